// dns_names_test.cpp — the names DNSBL queries are built from: reversed IPv4 octets, reversed
// IPv6 nibbles (every text form, IPv4-mapped included), and SHA-1 hex of hashed recipients.
#include <gtest/gtest.h>

#include "enrich/dns.hpp"

namespace saslguard::enrich {
namespace {

TEST(ReversedAddress, ReversesIpv4Octets) {
  EXPECT_EQ(reversedAddress("1.2.3.4"), "4.3.2.1");
  EXPECT_EQ(reversedAddress("127.0.0.2"), "2.0.0.127");
  EXPECT_EQ(reversedAddress("192.0.2.255"), "255.2.0.192");
  EXPECT_EQ(reversedAddress("0.0.0.0"), "0.0.0.0");
}

TEST(ReversedAddress, ReversesIpv6NibblesLowestFirst) {
  EXPECT_EQ(reversedAddress("::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0");
  EXPECT_EQ(reversedAddress("2001:db8::7"),
            "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  // Upper case and the uncompressed form name the same address, so the same query.
  EXPECT_EQ(reversedAddress("2001:DB8:0:0:0:0:0:7"), reversedAddress("2001:db8::7"));
  EXPECT_EQ(reversedAddress("2001:db8:abcd:12::ff00"),
            "0.0.f.f.0.0.0.0.0.0.0.0.0.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2");
}

TEST(ReversedAddress, KeepsIpv4MappedAddressesInTheIpv6Form) {
  EXPECT_EQ(reversedAddress("::ffff:1.2.3.4"),
            "4.0.3.0.2.0.1.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0");
}

TEST(ReversedAddress, RejectsWhatIsNotAnAddress) {
  for (const char* text :
       {"", "1.2.3", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/32", "example.org",
        "fe80::1%eth0", "[::1]", "2001:db8::7::1", "::ffff:1.2.3.4.5", "unknown"}) {
    EXPECT_FALSE(reversedAddress(text)) << "'" << text << "'";
  }
  EXPECT_FALSE(reversedAddress(std::string(200, '1')));
}

TEST(ReversedAddress, ReadsOnlyTheViewNotWhatFollowsIt) {
  const std::string text = "10.1.2.34567";
  EXPECT_EQ(reversedAddress(std::string_view(text).substr(0, 8)), "3.2.1.10");
}

TEST(Sha1Hex, MatchesKnownDigests) {
  EXPECT_EQ(sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // `printf victim@example.org | sha1sum`
  EXPECT_EQ(sha1Hex("victim@example.org"), "48d52d0cbfabe3cd0616420725da6bc8483de27c");
}

}  // namespace
}  // namespace saslguard::enrich
