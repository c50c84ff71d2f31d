// spec.tenants and data sources, including the local file checks.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spec_decode.h"

namespace braid::spec::internal {
namespace {

constexpr int kMaxReplicas = 1000;

std::string ErrnoText(int error) { return std::generic_category().message(error); }

// `resolved` for messages: absolute even when the job had no base_dir.
std::string Shown(const std::string& resolved) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(resolved, ec);
  return ec ? resolved : absolute.lexically_normal().string();
}

// The file (or directory) a local run will read must exist, be of that kind
// and be readable by this process.
void CheckLocalFile(const std::string& resolved, const std::string& path, SourceKind kind,
                    Errors* errors) {
  struct stat st;
  if (stat(resolved.c_str(), &st) != 0) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      errors->Add(path, std::string(kind == SourceKind::kFile ? "no such file: "
                                                              : "no such directory: ") +
                            Shown(resolved));
    } else {
      errors->Add(path, "cannot access " + Shown(resolved) + ": " + ErrnoText(error));
    }
    return;
  }
  if (kind == SourceKind::kDirectory) {
    if (!S_ISDIR(st.st_mode)) {
      errors->Add(path, "not a directory: " + Shown(resolved) +
                            " (give the checkpoint folder, not a file in it)");
    } else if (access(resolved.c_str(), R_OK | X_OK) != 0) {
      errors->Add(path, "not readable: " + Shown(resolved) + ": " + ErrnoText(errno));
    }
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    errors->Add(path, "not a regular file: " + Shown(resolved) +
                          (S_ISDIR(st.st_mode) ? " (a directory)" : ""));
    return;
  }
  if (access(resolved.c_str(), R_OK) != 0) {
    errors->Add(path, "not readable: " + Shown(resolved) + ": " + ErrnoText(errno));
  }
}

namespace fs = std::filesystem;

// Whether `path` is `root` or lies inside it (both absolute and lexically
// normal).
bool Inside(const fs::path& path, const fs::path& root) {
  std::string r = root.string();
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  const fs::path rel = path.lexically_relative(r);
  return !rel.empty() && *rel.begin() != "..";
}

// The folders local paths may name: the job's and the allowed ones,
// absolute and lexically normal.
std::vector<fs::path> Roots(const JobSpec& job, const ParseOptions& options) {
  std::vector<fs::path> roots;
  if (!job.base_dir.empty()) roots.push_back(fs::path(job.base_dir).lexically_normal());
  for (const std::string& dir : options.allowed_dirs) {
    std::error_code ec;
    fs::path absolute = fs::absolute(dir, ec);
    if (!ec) roots.push_back(absolute.lexically_normal());
  }
  return roots;
}

bool InsideAny(const fs::path& path, const std::vector<fs::path>& roots) {
  for (const fs::path& root : roots) {
    if (Inside(path, root)) return true;
  }
  return false;
}

std::string Outside(const JobSpec& job) {
  return job.base_dir.empty() ? std::string("outside the job's folder")
                              : "outside the job's folder " + job.base_dir;
}

constexpr char kConfineHint[] =
    "; keep the job's files in the job file's folder (relative paths resolve against it), or "
    "allow another folder with braid run --allow-path DIR";

// The path of a DataSource stays in the job's folder (or an allowed one):
// lexically, and once symbolic links are resolved. For a folder
// (spec.model.base), every file in it too. Returns false after adding an
// error.
bool CheckConfined(const std::string& raw, const std::string& path, const JobSpec& job,
                   const ParseOptions& options, SourceKind kind, Errors* errors) {
  const std::vector<fs::path> roots = Roots(job, options);
  const fs::path given(raw);
  if (job.base_dir.empty()) {
    // In-memory YAML (the operator): nothing to resolve against; a pod
    // resolves relative paths against the job file's folder.
    const fs::path normal = given.lexically_normal();
    const bool escapes = given.is_absolute() ? !InsideAny(normal, roots)
                                             : (!normal.empty() && *normal.begin() == "..");
    if (escapes) {
      errors->Add(path, Quote(raw) + " is " + Outside(job) + kConfineHint);
      return false;
    }
    return true;
  }
  const fs::path resolved(ResolvedPath(job, raw));
  if (!InsideAny(resolved, roots)) {
    errors->Add(path, Quote(raw) + " is " + Outside(job) + kConfineHint);
    return false;
  }
  // Symbolic links: compare real paths with real roots.
  std::vector<fs::path> real_roots;
  for (const fs::path& root : roots) {
    std::error_code ec;
    fs::path real = fs::weakly_canonical(root, ec);
    real_roots.push_back(ec ? root : real);
  }
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(resolved, ec);
  if (!ec && !InsideAny(real, real_roots)) {
    errors->Add(path, Quote(raw) + " leads through a symbolic link to " + real.string() +
                          ", " + Outside(job) + kConfineHint);
    return false;
  }
  if (kind != SourceKind::kDirectory || ec || !fs::is_directory(real, ec)) return true;
  // A checkpoint folder's files (config.json, weights, tokenizer) may be
  // links too (Hugging Face's cache links snapshots to blobs).
  constexpr int kMaxEntries = 10000;
  int seen = 0;
  for (fs::directory_iterator it(real, ec), end; !ec && it != end && seen < kMaxEntries;
       it.increment(ec), ++seen) {
    std::error_code entry_ec;
    const fs::path target = fs::weakly_canonical(it->path(), entry_ec);
    if (!entry_ec && !InsideAny(target, real_roots)) {
      errors->Add(path, Quote(raw) + ": " + it->path().filename().string() +
                            " leads through a symbolic link to " + target.string() + ", " +
                            Outside(job) + kConfineHint);
      return false;
    }
  }
  return true;
}

// Kubernetes' rule for volume subPaths: relative, no ".." component.
bool IsSafeSubPath(const std::string& sub_path) {
  std::filesystem::path p(sub_path);
  if (p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

void DecodeClaim(const YAML::Node& node, const std::string& path, DataSource* out,
                 Errors* errors) {
  MapReader m(node, path, {"claimName", "subPath"}, errors);
  if (const YAML::Node* n =
          m.Require("claimName", "the name of a PersistentVolumeClaim in the tenant's namespace")) {
    std::string claim;
    if (ReadString(*n, m.Path("claimName"), errors, &claim)) {
      if (IsDns1123Subdomain(claim)) {
        out->claim_name = std::move(claim);
      } else {
        errors->Add(m.Path("claimName"),
                    "must be a Kubernetes object name (lowercase letters, digits, '-' and '.', "
                    "at most 253 characters), got " +
                        Quote(claim));
      }
    }
  }
  if (const YAML::Node* n = m.Find("subPath")) {
    std::string sub_path;
    if (ReadString(*n, m.Path("subPath"), errors, &sub_path)) {
      if (IsSafeSubPath(sub_path)) {
        out->sub_path = std::move(sub_path);
      } else {
        errors->Add(m.Path("subPath"),
                    "must be a relative path inside the volume without \"..\", got " +
                        Quote(sub_path));
      }
    }
  }
}

// spec.tenants[i].site and .dataset, given that the tenant has no data.
void DecodeSite(const MapReader& m, const YAML::Node* site, const YAML::Node* dataset,
                const ParseOptions& options, Tenant* tenant, Errors* errors) {
  if (site == nullptr) {
    errors->Add(m.Path("site"),
                "required when dataset is set: the site (a Site in the coordinator cluster) "
                "whose data the dataset names");
  } else if (ReadName(*site, m.Path("site"), errors, &tenant->site) && options.check_files) {
    errors->Add(m.Path("site"),
                "needs a coordinator: braid run has no sites; give this tenant data: {path: "
                "file} to run the job here, or apply it to a cluster whose braid-operator runs "
                "in the coordinator role");
  }
  if (dataset == nullptr) {
    if (site != nullptr) {
      errors->Add(m.Path("dataset"),
                  "required when site is set: the logical name of the data at the site "
                  "(a name in its Tenant's spec.datasets), such as \"notes\"");
    }
    return;
  }
  std::string name;
  if (!ReadString(*dataset, m.Path("dataset"), errors, &name)) return;
  if (!IsDns1123Subdomain(name)) {
    errors->Add(m.Path("dataset"),
                "must be a dataset name (lowercase letters, digits, '-' and '.', at most 253 "
                "characters), got " +
                    Quote(name));
    return;
  }
  tenant->dataset = std::move(name);
}

// Returns true when the tenant's replica count is known (valid or default).
bool DecodeTenant(const YAML::Node& node, const std::string& path, const ParseOptions& options,
                  const JobSpec& job, Tenant* tenant, Errors* errors) {
  MapReader m(node, path,
              {"name", "namespace", "replicas", "data", "site", "dataset", "maxExamples"},
              errors);
  if (!m.ok()) return false;
  if (const YAML::Node* n = m.Require("name", "a DNS-1123 label such as \"st-mary\"")) {
    ReadName(*n, m.Path("name"), errors, &tenant->name);
  }
  const YAML::Node* site = m.Find("site");
  const YAML::Node* dataset = m.Find("dataset");
  const bool remote = site != nullptr || dataset != nullptr;
  if (const YAML::Node* n = m.Find("namespace")) {
    if (remote) {
      errors->Add(m.Path("namespace"),
                  "not with site: the site runs this tenant's workers in its own Tenant's "
                  "namespace; remove namespace");
    } else {
      ReadName(*n, m.Path("namespace"), errors, &tenant->namespace_);
    }
  }
  bool replicas_ok = true;
  if (const YAML::Node* n = m.Find("replicas")) {
    replicas_ok = ReadInt(*n, m.Path("replicas"), 1, kMaxReplicas, errors, &tenant->replicas);
  }
  if (const YAML::Node* n = m.Find("maxExamples")) {
    ReadInt(*n, m.Path("maxExamples"), int64_t{1}, kMaxExamples, errors, &tenant->max_examples);
  }
  const YAML::Node* data = m.Find("data");
  if (data != nullptr && remote) {
    errors->Add(m.Path("data"),
                "not with site and dataset: a site maps the dataset to its own data; set "
                "either data, or site and dataset");
  } else if (remote) {
    DecodeSite(m, site, dataset, options, tenant, errors);
  } else if (const YAML::Node* n = m.Require(
                 "data",
                 "give data: {path: file.csv} or data: {persistentVolumeClaim: ...}, or "
                 "site and dataset (multi-site)")) {
    DecodeDataSource(*n, m.Path("data"), options, job, SourceKind::kFile, &tenant->data,
                     errors);
  }
  return replicas_ok;
}

}  // namespace

void DecodeDataSource(const YAML::Node& node, const std::string& path,
                      const ParseOptions& options, const JobSpec& job, SourceKind kind,
                      DataSource* out, Errors* errors) {
  MapReader m(node, path, {"path", "persistentVolumeClaim"}, errors);
  if (!m.ok()) return;
  const YAML::Node* local = m.Find("path");
  const YAML::Node* claim = m.Find("persistentVolumeClaim");
  if (local != nullptr && claim != nullptr) {
    errors->Add(path, "set exactly one of path or persistentVolumeClaim, not both");
    return;
  }
  if (local == nullptr && claim == nullptr) {
    errors->Add(path, std::string("set path (a local ") +
                          (kind == SourceKind::kFile ? "file" : "folder") +
                          ") or persistentVolumeClaim (on Kubernetes)");
    return;
  }
  if (local != nullptr) {
    const std::string local_path = m.Path("path");
    if (!ReadString(*local, local_path, errors, &out->path)) return;
    if (out->path.empty()) {
      errors->Add(local_path, "must be a path, got \"\"");
      return;
    }
    if (options.confine_paths &&
        !CheckConfined(out->path, local_path, job, options, kind, errors)) {
      return;
    }
    if (options.check_files) {
      CheckLocalFile(ResolvedPath(job, out->path), local_path, kind, errors);
    }
    return;
  }
  const std::string claim_path = m.Path("persistentVolumeClaim");
  DecodeClaim(*claim, claim_path, out, errors);
  if (options.check_files) {
    errors->Add(claim_path,
                std::string("needs Kubernetes: a local run cannot mount a "
                            "PersistentVolumeClaim; set path to a local ") +
                    (kind == SourceKind::kFile ? "file" : "folder") +
                    " instead, or run the job with the operator");
  }
}

bool DecodeTenants(const YAML::Node& node, const std::string& path,
                   const ParseOptions& options, JobSpec* job, Errors* errors) {
  if (!CheckList(node, path, 1, kMaxTenants, "tenants", errors)) return false;
  bool replicas_known = true;
  std::unordered_map<std::string, size_t> first;       // tenant name -> index
  std::unordered_map<std::string, size_t> first_site;  // site -> index of its tenant
  job->tenants.reserve(node.size());
  size_t i = 0;
  for (auto it = node.begin(); it != node.end(); ++it, ++i) {
    const std::string tenant_path = IndexPath(path, i);
    Tenant tenant;
    if (!DecodeTenant(*it, tenant_path, options, *job, &tenant, errors)) replicas_known = false;
    if (!tenant.name.empty()) {
      auto [where, inserted] = first.emplace(tenant.name, i);
      if (!inserted) {
        errors->Add(FieldPath(tenant_path, "name"),
                    "duplicate tenant " + Quote(tenant.name) + " (also " +
                        IndexPath(path, where->second) + ")");
      }
    }
    if (tenant.IsSite()) {
      // One tenant per site: the site's certificate ("site:<site>") must
      // identify exactly one tenant, or one site could count as several
      // tenants (strategy.minTenants) and weigh as several.
      auto [where, inserted] = first_site.emplace(tenant.site, i);
      if (!inserted) {
        const Tenant& other = job->tenants[where->second];
        errors->Add(FieldPath(tenant_path, "site"),
                    "site " + Quote(tenant.site) + " is already tenant " + Quote(other.name) +
                        " (" + IndexPath(path, where->second) +
                        "); a site takes part in a job once (give it more replicas instead)");
      }
    }
    job->tenants.push_back(std::move(tenant));
  }
  return replicas_known;
}

}  // namespace braid::spec::internal
