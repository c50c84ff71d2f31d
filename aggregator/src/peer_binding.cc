#include "braid/aggregator/peer_binding.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <grpcpp/security/auth_context.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "braid/core/pki.h"
#include "braid/core/status_macros.h"

namespace braid::aggregator {
namespace {

// The longest common name worth quoting back in a message.
constexpr size_t kMaxShownName = 80;
// A CA bundle this large is not a CA bundle.
constexpr size_t kMaxBundleBytes = 1 << 20;

std::string Shown(const std::string& cn) {
  if (cn.empty()) return "none";
  return cn.size() <= kMaxShownName ? cn : cn.substr(0, kMaxShownName) + "...";
}

X509* AsX509(const std::shared_ptr<void>& p) { return static_cast<X509*>(p.get()); }

// Every certificate in `pem`, in order; InvalidArgument naming `what` when
// none parses or the text is too large.
absl::StatusOr<std::vector<std::shared_ptr<void>>> ReadCertificates(const std::string& pem,
                                                                    const std::string& what) {
  if (pem.size() > kMaxBundleBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is larger than 1 MiB"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::vector<std::shared_ptr<void>> out;
  while (bio != nullptr) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    out.emplace_back(cert, [](void* p) { X509_free(static_cast<X509*>(p)); });
  }
  ERR_clear_error();  // the read past the last certificate
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " holds no PEM certificate"));
  }
  return out;
}

}  // namespace

std::string PeerCertificatePem(const grpc::ServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  for (const grpc::string_ref& v : auth->FindPropertyValues("x509_pem_cert")) {
    return std::string(v.data(), v.size());
  }
  return "";
}

absl::StatusOr<PeerBinding> PeerBinding::Create(const spec::JobSpec& job,
                                                const std::string& job_ca_pem,
                                                const std::string& site_ca_pem,
                                                std::shared_ptr<SiteAdmission> admission) {
  PeerBinding b;
  for (const spec::Tenant& t : job.tenants) {
    if (!t.IsSite()) continue;
    if (!b.tenant_of_site_.emplace(t.site, t.name).second) {
      // core/spec refuses this; kept so that a binding is never ambiguous.
      return absl::InvalidArgumentError(
          absl::StrCat("site '", t.site, "' is named by two tenants of the job"));
    }
    b.site_of_tenant_[t.name] = t.site;
  }
  if (site_ca_pem.empty()) return b;
  if (admission == nullptr) {
    return absl::InvalidArgumentError(
        "--tls-client-ca-extra needs --site-admission: the list of the sites the coordinator "
        "admits now");
  }
  b.admission_ = std::move(admission);
  absl::StatusOr<std::vector<std::shared_ptr<void>>> cas =
      ReadCertificates(site_ca_pem, "the federation CA (--tls-client-ca-extra)");
  if (!cas.ok()) return cas.status();
  if (!job_ca_pem.empty()) {
    absl::StatusOr<std::vector<std::shared_ptr<void>>> job_cas =
        ReadCertificates(job_ca_pem, "the job's CA (--tls-ca)");
    if (!job_cas.ok()) return job_cas.status();
    for (const auto& site_ca : *cas) {
      for (const auto& job_ca : *job_cas) {
        if (X509_cmp(AsX509(site_ca), AsX509(job_ca)) == 0) {
          return absl::InvalidArgumentError(
              "--tls-client-ca-extra holds the job's own CA; give the federation CA, which "
              "issues only site certificates");
        }
      }
    }
  }
  b.site_cas_ = *std::move(cas);
  return b;
}

bool PeerBinding::IssuedBySiteCa(const std::string& peer_cert_pem) const {
  if (site_cas_.empty() || peer_cert_pem.empty()) return false;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(peer_cert_pem.data(), static_cast<int>(peer_cert_pem.size())), &BIO_free);
  if (bio == nullptr) return false;
  std::unique_ptr<X509, decltype(&X509_free)> leaf(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (leaf == nullptr) {
    ERR_clear_error();
    return false;
  }
  for (const auto& ca : site_cas_) {
    // Names and key identifiers match, and the CA's key signed it.
    if (X509_check_issued(AsX509(ca), leaf.get()) == X509_V_OK &&
        X509_verify(leaf.get(), X509_get0_pubkey(AsX509(ca))) == 1) {
      return true;
    }
  }
  ERR_clear_error();
  return false;
}

absl::StatusOr<std::string> PeerBinding::TenantOf(const std::string& common_name,
                                                  const std::string& peer_cert_pem) const {
  if (std::optional<std::string> tenant = pki::TenantOf(common_name); tenant.has_value()) {
    if (auto site = site_of_tenant_.find(*tenant); site != site_of_tenant_.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("tenant '", *tenant, "' takes part through site '", site->second,
                       "'; only that site's certificate (CN=site:", site->second,
                       ") speaks for it"));
    }
    if (IssuedBySiteCa(peer_cert_pem)) {
      return absl::PermissionDeniedError(
          absl::StrCat("the caller's certificate (CN=", Shown(common_name),
                       ") comes from the federation CA, which issues only site certificates"));
    }
    return *tenant;
  }
  if (std::optional<std::string> site = pki::SiteOf(common_name); site.has_value()) {
    if (!admits_sites()) {
      return absl::PermissionDeniedError(
          absl::StrCat("the caller's certificate is site '", *site,
                       "''s, and this aggregator admits no site certificates"));
    }
    if (!IssuedBySiteCa(peer_cert_pem)) {
      return absl::PermissionDeniedError(
          absl::StrCat("the caller's certificate (CN=", Shown(common_name),
                       ") is not from the federation CA; a site's certificate is"));
    }
    auto it = tenant_of_site_.find(*site);
    if (it == tenant_of_site_.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("site '", *site, "' is not a tenant of this job"));
    }
    absl::StatusOr<pki::CertInfo> info = pki::InspectCert(peer_cert_pem);
    if (!info.ok()) return absl::PermissionDeniedError("the caller's certificate does not parse");
    BRAID_RETURN_IF_ERROR(admission_->Check(*site, pki::SiteUidOf(*info)));
    return it->second;
  }
  return absl::PermissionDeniedError(
      absl::StrCat("the caller's certificate (CN=", Shown(common_name),
                   ") is not a tenant's or a site's; workers use their tenant's or site's "
                   "certificate"));
}

absl::Status PeerBinding::MayReadStatus(const std::string& common_name,
                                        const std::string& peer_cert_pem) const {
  if (!IssuedBySiteCa(peer_cert_pem)) return absl::OkStatus();
  absl::StatusOr<std::string> tenant = TenantOf(common_name, peer_cert_pem);
  return tenant.ok() ? absl::OkStatus() : tenant.status();
}

}  // namespace braid::aggregator
