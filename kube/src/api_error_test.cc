#include "braid/kube/api_error.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

using ::testing::HasSubstr;

std::string ServerStatus(int code, const std::string& reason, const std::string& message) {
  return absl::StrCat(R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":")",
                      message, R"(","reason":")", reason, R"(","code":)", code, "}");
}

TEST(ApiErrorTest, MapsHttpCodesToGrpcMeaning) {
  struct Case {
    std::string method;
    int http;
    std::string reason;
    absl::StatusCode code;
  } cases[] = {
      {"GET", 404, "NotFound", absl::StatusCode::kNotFound},
      {"POST", 409, "AlreadyExists", absl::StatusCode::kAlreadyExists},
      {"POST", 409, "", absl::StatusCode::kAlreadyExists},
      {"PUT", 409, "Conflict", absl::StatusCode::kAborted},
      {"PATCH", 409, "Conflict", absl::StatusCode::kAborted},
      {"PUT", 409, "", absl::StatusCode::kAborted},
      {"GET", 410, "Expired", absl::StatusCode::kOutOfRange},
      {"POST", 422, "Invalid", absl::StatusCode::kInvalidArgument},
      {"PATCH", 400, "BadRequest", absl::StatusCode::kInvalidArgument},
      {"GET", 401, "Unauthorized", absl::StatusCode::kUnauthenticated},
      {"GET", 403, "Forbidden", absl::StatusCode::kPermissionDenied},
      {"GET", 429, "TooManyRequests", absl::StatusCode::kUnavailable},
      {"GET", 500, "InternalError", absl::StatusCode::kUnavailable},
      {"GET", 503, "ServiceUnavailable", absl::StatusCode::kUnavailable},
      {"GET", 418, "", absl::StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    const absl::Status s = ApiError(c.method, "/api/v1/x", c.http, ServerStatus(c.http, c.reason, "m"));
    EXPECT_EQ(s.code(), c.code) << c.method << " " << c.http << " " << c.reason;
    EXPECT_EQ(HttpStatusOf(s), c.http);
    EXPECT_EQ(ApiReasonOf(s), c.reason);
    EXPECT_EQ(IsGone(s), c.http == 410);
  }
}

TEST(ApiErrorTest, KeepsServerMessageIntactAndNamesTheCall) {
  const std::string message =
      R"(ConfigMap \"cfg\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters)";
  const absl::Status s = ApiError("POST", "/api/v1/namespaces/a/configmaps", 422,
                                  ServerStatus(422, "Invalid", message));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("POST /api/v1/namespaces/a/configmaps: 422 Unprocessable Entity: "));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("ConfigMap \"cfg\" is invalid: data[bad key]: Invalid value"));
}

TEST(ApiErrorTest, NonStatusBodyIsQuotedBounded) {
  const absl::Status s = ApiError("GET", "/api/v1/pods", 502, "<html>bad gateway</html>\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(s.message()), "GET /api/v1/pods: 502 Bad Gateway: <html>bad gateway</html>");
  const absl::Status big = ApiError("GET", "/p", 500, std::string(5000, 'x'));
  EXPECT_LT(big.message().size(), 600u);
}

TEST(ApiErrorTest, WatchErrorWith410IsGone) {
  const absl::Status s = WatchError("/api/v1/pods?watch=1", 410, "Expired", "too old resource version: 1 (50)");
  EXPECT_TRUE(IsGone(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("too old resource version"));
  EXPECT_FALSE(IsGone(WatchError("/p", 500, "InternalError", "boom")));
  EXPECT_FALSE(IsGone(absl::OutOfRangeError("not from the server")));
  EXPECT_FALSE(IsGone(absl::OkStatus()));
}

}  // namespace
}  // namespace braid::kube
