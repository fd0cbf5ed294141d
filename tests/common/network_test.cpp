// network_test.cpp — IP address and CIDR parsing as allow/deny lists and client addresses use it:
// what is an address (exactly what inet_pton accepts), IPv4-mapped IPv6, prefix matching.
#include <gtest/gtest.h>

#include "common/network.hpp"

namespace saslguard {
namespace {

TEST(ParseAddress, AcceptsDottedQuads) {
  for (const char* text : {"192.0.2.1", "0.0.0.0", "255.255.255.255", "10.0.0.10", "1.2.3.4"}) {
    const auto address = parseAddress(text);
    ASSERT_TRUE(address) << text;
    EXPECT_TRUE(address->is_v4()) << text;
    EXPECT_EQ(address->to_string(), text);
  }
}

TEST(ParseAddress, RejectsWhatInetPtonRejects) {
  for (const char* text : {"", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04", "1.2.3",
                           "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4",
                           "1.2.3.4/24", "1.2.3.a", "1000.2.3.4", "unknown", "[192.0.2.1]"}) {
    EXPECT_FALSE(parseAddress(text)) << "'" << text << "'";
  }
}

TEST(ParseAddress, AcceptsIpv6AndUnmapsIpv4MappedAddresses) {
  const auto v6 = parseAddress("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->is_v6());
  const auto mapped = parseAddress("::ffff:192.0.2.7");
  ASSERT_TRUE(mapped);
  ASSERT_TRUE(mapped->is_v4());
  EXPECT_EQ(mapped->to_string(), "192.0.2.7");
}

TEST(NetworkList, MatchesPrefixes) {
  const auto list = NetworkList::parse({"203.0.113.0/24", "2001:db8::/32", "192.0.2.9"});
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->contains(*parseAddress("203.0.113.200")));
  EXPECT_FALSE(list->contains(*parseAddress("203.0.114.1")));
  EXPECT_TRUE(list->contains(*parseAddress("192.0.2.9")));
  EXPECT_FALSE(list->contains(*parseAddress("192.0.2.10")));
  EXPECT_TRUE(list->contains(*parseAddress("2001:db8:1::5")));
  EXPECT_TRUE(list->contains(*parseAddress("::ffff:203.0.113.1")));
}

}  // namespace
}  // namespace saslguard
