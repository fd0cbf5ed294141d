// migrate_geoip_policyd_test.cpp — how one geoip-policyd record (`geopol_<sender>` JSON) becomes
// the geo detector's sets: foreign and home apart, IPv6 per prefix, expired entries left out,
// and a clear error value (never a crash) for every malformed record.
#include <gtest/gtest.h>

#include "cli/migrate_geoip_policyd.hpp"

namespace saslguard::cli {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;  // unix seconds
constexpr std::int64_t kNs = 1'000'000'000;

MigrationRules rules() {
  MigrationRules r;
  r.ttl_s = 3600;
  r.ipv6_prefix = 64;
  r.now_s = kNow;
  return r;
}

std::string ns(std::int64_t seconds_ago) {
  return std::to_string((kNow - seconds_ago) * kNs);
}

TEST(MigrateGeoipPolicyd, AV1RecordSplitsForeignAndHomeAndKeepsLastSeenTimes) {
  const auto text = R"({"ForeignIPs":{"81.2.69.142":)" + ns(10) + R"(,"2001:218::1":)" + ns(20) +
                    R"(,"2001:218::2":)" + ns(5) + R"(},"ForeignCountries":{"gb":)" + ns(10) +
                    R"(,"JP":)" + ns(5) + R"(},"HomeCountries":{"IPs":{"89.160.20.112":)" + ns(30) +
                    R"(},"Countries":{"SE":)" + ns(30) + R"(}},"Actions":null,"Locked":false})";
  const auto record = migrateGeopolRecord("alice", text, rules());
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(record->account, "alice");
  EXPECT_FALSE(record->locked);
  ASSERT_EQ(record->foreign_countries.size(), 2u);
  EXPECT_EQ(record->foreign_countries[0].value, "GB");  // upper-cased, as the detector stores
  EXPECT_EQ(record->foreign_countries[0].last_seen_s, kNow - 10);
  // Both IPv6 addresses fall in one /64: one member, the later time.
  ASSERT_EQ(record->foreign_ips.size(), 2u);
  EXPECT_EQ(record->foreign_ips[0].value, "81.2.69.142");
  EXPECT_EQ(record->foreign_ips[1].value, "2001:218::/64");
  EXPECT_EQ(record->foreign_ips[1].last_seen_s, kNow - 5);
  ASSERT_EQ(record->home_countries.size(), 1u);
  EXPECT_EQ(record->home_countries[0].value, "SE");
  ASSERT_EQ(record->home_ips.size(), 1u);
  EXPECT_EQ(record->live(), 6u);
}

TEST(MigrateGeoipPolicyd, EntriesOlderThanTheTtlAreLeftOutAndCounted) {
  const auto text = R"({"ForeignCountries":{"DE":)" + ns(3600) + R"(,"FR":)" + ns(3599) +
                    R"(},"HomeCountries":null,"Locked":false})";
  const auto record = migrateGeopolRecord("bob", text, rules());
  ASSERT_TRUE(record) << record.error().message;
  ASSERT_EQ(record->foreign_countries.size(), 1u);
  EXPECT_EQ(record->foreign_countries[0].value, "FR");
  EXPECT_EQ(record->expired, 1u);
}

TEST(MigrateGeoipPolicyd, ALockedRecordIsKeptEvenWithNothingLive) {
  const auto record = migrateGeopolRecord(
      "carol", R"({"ForeignIPs":{},"ForeignCountries":{},"HomeCountries":null,"Locked":true})",
      rules());
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_TRUE(record->locked);
  EXPECT_EQ(record->live(), 0u);
}

TEST(MigrateGeoipPolicyd, V034TopLevelMapsAreTheForeignOnes) {
  const auto text = R"({"IPs":{"81.2.69.142":)" + ns(1) + R"(},"Countries":{"GB":)" + ns(1) + "}}";
  const auto record = migrateGeopolRecord("dave", text, rules());
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(record->foreign_ips.size(), 1u);
  EXPECT_EQ(record->foreign_countries.size(), 1u);
}

TEST(MigrateGeoipPolicyd, MalformedRecordsAreErrorValuesThatSayWhy) {
  const auto error = [](std::string_view text) {
    const auto record = migrateGeopolRecord("x", text, rules());
    return record ? std::string("accepted") : record.error().message;
  };
  EXPECT_EQ(error("{not json").rfind("malformed JSON", 0), 0u) << error("{not json");
  EXPECT_EQ(error(""), error("")) << "no crash on an empty value";
  EXPECT_EQ(error(R"(["a"])"), "malformed record: not a JSON object");
  EXPECT_EQ(error(R"({"Something":1})"),
            "malformed record: none of ForeignIPs, ForeignCountries, HomeCountries, Locked");
  EXPECT_EQ(error(R"({"ForeignIPs":{"300.1.1.1":1}})"),
            "malformed record: ForeignIPs: '300.1.1.1' is not an IP address");
  EXPECT_EQ(error(R"({"ForeignCountries":{"DE":"yesterday"}})"),
            R"(malformed record: ForeignCountries: not a time in nanoseconds: "yesterday")");
  EXPECT_EQ(error(R"({"ForeignIPs":["81.2.69.142"]})").find("a list without times"),
            std::string("malformed record: ForeignIPs: ").size());
  EXPECT_EQ(error(R"({"HomeCountries":7})"), "malformed record: HomeCountries is not an object");
  EXPECT_EQ(error(R"({"Locked":"yes"})"), "malformed record: Locked is not a boolean");
}

}  // namespace
}  // namespace saslguard::cli
