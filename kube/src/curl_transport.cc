// HttpTransport over libcurl.
#include <curl/curl.h>
#include <sys/stat.h>

#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/file_io.h"
#include "braid/kube/http.h"

namespace braid::kube {
namespace {

constexpr size_t kMaxBodyBytes = size_t{256} << 20;  // a List page is far smaller
constexpr size_t kMaxErrorBodyBytes = size_t{1} << 20;
constexpr size_t kMaxPooledHandles = 8;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A curl_slist freed on scope exit.
class HeaderList {
 public:
  HeaderList() = default;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() { curl_slist_free_all(list_); }
  void Add(const std::string& h) { list_ = curl_slist_append(list_, h.c_str()); }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

struct BufferSink {
  std::string body;
  bool overflow = false;
};

size_t WriteToBuffer(char* ptr, size_t size, size_t n, void* user) {
  auto* sink = static_cast<BufferSink*>(user);
  const size_t len = size * n;
  if (sink->body.size() + len > kMaxBodyBytes) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->body.append(ptr, len);
  return len;
}

struct StreamSink {
  CURL* handle = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  long status = 0;
  bool stopped = false;  // on_data returned false
  std::string error_body;
};

size_t WriteToStream(char* ptr, size_t size, size_t n, void* user) {
  auto* sink = static_cast<StreamSink*>(user);
  const size_t len = size * n;
  if (sink->status == 0) curl_easy_getinfo(sink->handle, CURLINFO_RESPONSE_CODE, &sink->status);
  if (sink->status >= 200 && sink->status < 300) {
    if (!(*sink->on_data)(std::string_view(ptr, len))) {
      sink->stopped = true;
      return 0;
    }
    return len;
  }
  if (sink->error_body.size() < kMaxErrorBodyBytes) {
    sink->error_body.append(ptr, std::min(len, kMaxErrorBodyBytes - sink->error_body.size()));
  }
  return len;
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(Config config) : config_(std::move(config)) {}
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;
  ~CurlTransport() override {
    absl::MutexLock lock(&pool_mu_);
    for (CURL* h : pool_) curl_easy_cleanup(h);
  }

  absl::StatusOr<HttpResponse> Do(const HttpRequest& request) override {
    CURL* h = Acquire();
    HeaderList headers;
    char errbuf[CURL_ERROR_SIZE] = {0};
    if (absl::Status s = Configure(h, request, headers, errbuf); !s.ok()) {
      Release(h);
      return s;
    }
    BufferSink sink;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteToBuffer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    const CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    Release(h);
    if (sink.overflow) {
      return absl::ResourceExhaustedError(absl::StrCat(request.method, " ", request.path,
                                                       ": response larger than ",
                                                       kMaxBodyBytes >> 20, " MiB"));
    }
    if (rc != CURLE_OK) return TransportError(request, rc, errbuf);
    return HttpResponse{static_cast<int>(status), std::move(sink.body)};
  }

  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      const std::function<bool(std::string_view)>& on_data,
                                      const CancelToken* cancel) override {
    // A dedicated handle: a stopped stream leaves its connection unusable.
    CURL* h = curl_easy_init();
    if (h == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
    HeaderList headers;
    char errbuf[CURL_ERROR_SIZE] = {0};
    if (absl::Status s = Configure(h, request, headers, errbuf); !s.ok()) {
      curl_easy_cleanup(h);
      return s;
    }
    StreamSink sink;
    sink.handle = h;
    sink.on_data = &on_data;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteToStream);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);

    CURLM* multi = curl_multi_init();
    curl_multi_add_handle(multi, h);
    bool cancelled = false;
    CURLcode rc = CURLE_OK;
    CURLMcode mc = CURLM_OK;
    for (;;) {
      int running = 0;
      mc = curl_multi_perform(multi, &running);
      if (mc != CURLM_OK || running == 0) break;
      if (cancel != nullptr && cancel->cancelled()) {
        cancelled = true;
        break;
      }
      mc = curl_multi_poll(multi, nullptr, 0, /*timeout_ms=*/100, nullptr);
      if (mc != CURLM_OK) break;
    }
    if (!cancelled && mc == CURLM_OK) {
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) rc = msg->data.result;
      }
    }
    if (sink.status == 0) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &sink.status);
    curl_multi_remove_handle(multi, h);
    curl_multi_cleanup(multi);
    curl_easy_cleanup(h);

    if (cancelled || sink.stopped) return HttpResponse{static_cast<int>(sink.status), ""};
    if (mc != CURLM_OK) {
      return absl::UnavailableError(absl::StrCat(request.method, " ", request.path,
                                                 ": curl multi: ", curl_multi_strerror(mc)));
    }
    if (rc != CURLE_OK) return TransportError(request, rc, errbuf);
    if (sink.status >= 200 && sink.status < 300) {
      return HttpResponse{static_cast<int>(sink.status), ""};
    }
    return HttpResponse{static_cast<int>(sink.status), std::move(sink.error_body)};
  }

 private:
  absl::Status TransportError(const HttpRequest& request, CURLcode rc, const char* errbuf) const {
    return absl::UnavailableError(absl::StrCat(request.method, " ", config_.server, request.path,
                                               ": ", curl_easy_strerror(rc),
                                               *errbuf != '\0' ? absl::StrCat(" (", errbuf, ")")
                                                               : std::string()));
  }

  CURL* Acquire() {
    {
      absl::MutexLock lock(&pool_mu_);
      if (!pool_.empty()) {
        CURL* h = pool_.back();
        pool_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }

  void Release(CURL* h) {
    // Drops options pointing at this call's buffers; keeps the live
    // connection and TLS session for the next call.
    curl_easy_reset(h);
    absl::MutexLock lock(&pool_mu_);
    if (pool_.size() < kMaxPooledHandles) {
      pool_.push_back(h);
    } else {
      curl_easy_cleanup(h);
    }
  }

  // The bearer token: config.token, else token_file's content, re-read
  // when the file's mtime or size changes. "" for none.
  absl::StatusOr<std::string> Token() {
    if (!config_.token.empty()) return config_.token;
    if (config_.token_file.empty()) return std::string();
    struct stat st {};
    absl::MutexLock lock(&token_mu_);
    if (::stat(config_.token_file.c_str(), &st) == 0 && !token_.empty() &&
        st.st_mtim.tv_sec == token_mtime_.tv_sec && st.st_mtim.tv_nsec == token_mtime_.tv_nsec &&
        st.st_size == token_size_) {
      return token_;
    }
    absl::StatusOr<std::string> content = ReadSmallFile(config_.token_file, 1 << 20);
    if (!content.ok()) {
      return absl::UnavailableError(absl::StrCat("bearer token file: ",
                                                 std::string(content.status().message())));
    }
    token_ = std::string(absl::StripAsciiWhitespace(*content));
    token_mtime_ = st.st_mtim;
    token_size_ = st.st_size;
    return token_;
  }

  absl::Status Configure(CURL* h, const HttpRequest& request, HeaderList& headers, char* errbuf) {
    absl::StatusOr<std::string> token = Token();
    if (!token.ok()) {
      return absl::Status(token.status().code(),
                          absl::StrCat(request.method, " ", request.path, ": ",
                                       std::string(token.status().message())));
    }
    const std::string url = absl::StrCat(config_.server, request.path);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());  // curl copies strings
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (request.timeout > absl::ZeroDuration()) {
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
    }
    if (request.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, request.body.c_str());
    }
    headers.Add("Accept: application/json");
    headers.Add("User-Agent: braid-operator/0.1");
    headers.Add("Expect:");  // no 100-continue round trip for large bodies
    if (!request.content_type.empty()) headers.Add("Content-Type: " + request.content_type);
    if (!token->empty()) headers.Add("Authorization: Bearer " + *token);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());

    if (config_.insecure_skip_tls_verify) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!config_.ca_pem.empty()) {
      curl_blob blob{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(),
                     CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!config_.client_cert_pem.empty()) {
      curl_blob cert{const_cast<char*>(config_.client_cert_pem.data()),
                     config_.client_cert_pem.size(), CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(config_.client_key_pem.data()),
                    config_.client_key_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
    }
    return absl::OkStatus();
  }

  const Config config_;
  absl::Mutex pool_mu_;
  std::vector<CURL*> pool_ ABSL_GUARDED_BY(pool_mu_);
  absl::Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);
  timespec token_mtime_ ABSL_GUARDED_BY(token_mu_) = {};
  off_t token_size_ ABSL_GUARDED_BY(token_mu_) = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTransport>> NewCurlTransport(const Config& config) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("kube config: server \"", config.server, "\" is not an http(s) URL"));
  }
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "kube config: a client certificate needs its key, and a key its certificate");
  }
  GlobalInit();
  Config c = config;
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  return std::unique_ptr<HttpTransport>(new CurlTransport(std::move(c)));
}

}  // namespace braid::kube
