#include "braid/kube/resource.h"

#include "absl/strings/str_cat.h"

namespace braid::kube {

std::string ResourceRef::group() const {
  const size_t slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

std::string ResourceRef::PathPrefix() const {
  if (api_version.find('/') == std::string::npos) return absl::StrCat("/api/", api_version);
  return absl::StrCat("/apis/", api_version);
}

std::string ResourceRef::CollectionPath(const std::string& ns) const {
  if (namespaced && !ns.empty()) {
    return absl::StrCat(PathPrefix(), "/namespaces/", UrlEscape(ns), "/", plural);
  }
  return absl::StrCat(PathPrefix(), "/", plural);
}

std::string ResourceRef::ObjectPath(const std::string& ns, const std::string& name,
                                    const std::string& subresource) const {
  std::string path = absl::StrCat(CollectionPath(ns), "/", UrlEscape(name));
  if (!subresource.empty()) absl::StrAppend(&path, "/", subresource);
  return path;
}

std::string UrlEscape(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace braid::kube
