#include "braid/dashboard/request_rules.h"

#include "gtest/gtest.h"

namespace braid::dashboard {
namespace {

TEST(HostOfHostHeader, StripsPortAndBrackets) {
  EXPECT_EQ(HostOfHostHeader("Example.com:8080"), "example.com");
  EXPECT_EQ(HostOfHostHeader("[::1]:80"), "::1");
  EXPECT_EQ(HostOfHostHeader("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(HostOfHostHeader(""), "");
  EXPECT_EQ(HostOfHostHeader("[::1"), "");
  EXPECT_EQ(HostOfHostHeader("a:b"), "");
  EXPECT_EQ(HostOfHostHeader("::1"), "");
}

TEST(HostAllowed, AddressesLocalhostAndConfiguredNamesOnly) {
  const std::vector<std::string> none;
  EXPECT_TRUE(HostAllowed("127.0.0.1:8080", none));
  EXPECT_TRUE(HostAllowed("10.1.2.3", none));
  EXPECT_TRUE(HostAllowed("[::1]:8080", none));
  EXPECT_TRUE(HostAllowed("localhost:8080", none));
  EXPECT_TRUE(HostAllowed("LOCALHOST", none));
  EXPECT_TRUE(HostAllowed("app.localhost:3000", none));
  // DNS rebinding: a name that resolves to us is still not ours.
  EXPECT_FALSE(HostAllowed("evil.example:8080", none));
  EXPECT_FALSE(HostAllowed("127.0.0.1.nip.io:8080", none));
  EXPECT_FALSE(HostAllowed("localhost.:8080", none));
  EXPECT_FALSE(HostAllowed("localhost.evil.example", none));
  EXPECT_FALSE(HostAllowed("", none));
  EXPECT_FALSE(HostAllowed("[evil.example]:80", none));
  EXPECT_FALSE(HostAllowed("2130706433:80", none));  // not a dotted address

  const std::vector<std::string> names = {"Braid.Example.org", ".svc.cluster.local"};
  EXPECT_TRUE(HostAllowed("braid.example.org:443", names));
  EXPECT_TRUE(HostAllowed("braid-dashboard.braid-system.svc.cluster.local", names));
  EXPECT_FALSE(HostAllowed("svc.cluster.local", names));
  EXPECT_FALSE(HostAllowed("evil.example.org", names));
}

TEST(SameOrigin, SameHostAndPortOnly) {
  EXPECT_TRUE(SameOrigin("", "127.0.0.1:8080"));
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:8080", "127.0.0.1:8080"));
  EXPECT_TRUE(SameOrigin("http://LOCALHOST:8080", "localhost:8080"));
  EXPECT_TRUE(SameOrigin("http://example.org", "example.org:80"));
  EXPECT_TRUE(SameOrigin("https://example.org", "example.org"));
  // Another port on the same machine is another origin (and the same site).
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:9999", "127.0.0.1:8080"));
  EXPECT_FALSE(SameOrigin("http://localhost:8080", "127.0.0.1:8080"));
  EXPECT_FALSE(SameOrigin("null", "127.0.0.1:8080"));
  EXPECT_FALSE(SameOrigin("file://", "127.0.0.1:8080"));
  EXPECT_FALSE(SameOrigin("http://evil.example", "127.0.0.1:80"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:8080", ""));
}

}  // namespace
}  // namespace braid::dashboard
