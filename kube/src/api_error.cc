#include "braid/kube/api_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace braid::kube {
namespace {

constexpr char kHttpStatusUrl[] = "type.braid.dev/kube.HttpStatus";
constexpr char kReasonUrl[] = "type.braid.dev/kube.Reason";

const char* HttpText(int code) {
  switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

absl::StatusCode CodeFor(int http, const std::string& method, const std::string& reason) {
  switch (http) {
    case 400:
    case 422: return absl::StatusCode::kInvalidArgument;
    case 401: return absl::StatusCode::kUnauthenticated;
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 409:
      if (reason == "AlreadyExists" || (reason.empty() && method == "POST")) {
        return absl::StatusCode::kAlreadyExists;
      }
      return absl::StatusCode::kAborted;
    case 410: return absl::StatusCode::kOutOfRange;
    case 429: return absl::StatusCode::kUnavailable;
    default:
      if (http >= 500 && http <= 599) return absl::StatusCode::kUnavailable;
      return absl::StatusCode::kUnknown;
  }
}

absl::Status Make(const std::string& where, int http, const std::string& method,
                  const std::string& reason, const std::string& message) {
  std::string text = absl::StrCat(where, ": ", http);
  const char* phrase = HttpText(http);
  if (*phrase != '\0') absl::StrAppend(&text, " ", phrase);
  if (!message.empty()) absl::StrAppend(&text, ": ", message);
  absl::Status status(CodeFor(http, method, reason), text);
  status.SetPayload(kHttpStatusUrl, absl::Cord(std::to_string(http)));
  if (!reason.empty()) status.SetPayload(kReasonUrl, absl::Cord(reason));
  return status;
}

}  // namespace

absl::Status ApiError(const std::string& method, const std::string& path, int http_status,
                      const std::string& body) {
  std::string reason, message;
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.value("kind", "") == "Status") {
    if (j.contains("reason") && j["reason"].is_string()) reason = j["reason"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) {
      message = j["message"].get<std::string>();
    }
  } else if (!body.empty()) {
    // Not a Status (a proxy's page, plain text): keep a bounded prefix.
    message = body.size() > 512 ? absl::StrCat(body.substr(0, 512), "...") : body;
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  return Make(absl::StrCat(method, " ", path), http_status, method, reason, message);
}

absl::Status WatchError(const std::string& path, int code, const std::string& reason,
                        const std::string& message) {
  return Make(absl::StrCat("WATCH ", path), code, "GET", reason, message);
}

std::optional<int> HttpStatusOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kHttpStatusUrl);
  int code = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &code)) {
    return std::nullopt;
  }
  return code;
}

bool IsGone(const absl::Status& status) {
  const std::optional<int> code = HttpStatusOf(status);
  return code.has_value() && *code == 410;
}

std::string ApiReasonOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kReasonUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace braid::kube
