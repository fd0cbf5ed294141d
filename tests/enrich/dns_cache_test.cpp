// dns_cache_test.cpp — the shared DNS answer cache with an injected clock: entries live exactly
// their TTL, names match without case or trailing dot, the bound holds, 0 entries disables it.
#include <gtest/gtest.h>

#include "enrich/dns_cache.hpp"

namespace saslguard::enrich {
namespace {

using std::chrono::seconds;

DnsAnswer found(std::uint32_t address) {
  DnsAnswer answer;
  answer.status = DnsStatus::kFound;
  answer.addresses = {address};
  return answer;
}

const DnsCache::Clock::time_point kStart{seconds(1000)};

TEST(DnsCache, KeepsAnAnswerForItsTtlAndNoLonger) {
  DnsCache cache(100);
  cache.store("2.0.0.127.key.authbl.test", found(0x7f000004), seconds(2), kStart);
  const auto hit = cache.find("2.0.0.127.key.authbl.test", kStart + seconds(1));
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->from_cache);
  EXPECT_EQ(hit->status, DnsStatus::kFound);
  EXPECT_EQ(hit->addresses, std::vector<std::uint32_t>{0x7f000004});
  EXPECT_FALSE(cache.find("2.0.0.127.key.authbl.test", kStart + seconds(2)));
  EXPECT_EQ(cache.size(), 0u) << "an expired entry met by a lookup is dropped";
}

TEST(DnsCache, MatchesNamesWithoutCaseOrTrailingDot) {
  DnsCache cache(100);
  cache.store("2.0.0.127.KEY.authbl.test.", found(1), seconds(60), kStart);
  EXPECT_TRUE(cache.find("2.0.0.127.key.authbl.test", kStart));
  EXPECT_TRUE(cache.find("2.0.0.127.Key.AuthBL.Test.", kStart));
  EXPECT_FALSE(cache.find("3.0.0.127.key.authbl.test", kStart));
  EXPECT_EQ(normalizedDnsName("A.Example."), "a.example");
}

TEST(DnsCache, ReplacesTheEntryForTheSameName) {
  DnsCache cache(100);
  cache.store("x.test", found(1), seconds(60), kStart);
  cache.store("X.test", found(2), seconds(60), kStart);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find("x.test", kStart)->addresses, std::vector<std::uint32_t>{2});
}

TEST(DnsCache, NeverHoldsMoreThanItsCapacityAndDropsTheOldestFirst) {
  DnsCache cache(64);
  for (int i = 0; i < 1000; ++i) {
    cache.store("n" + std::to_string(i) + ".test", found(static_cast<std::uint32_t>(i)),
                seconds(600), kStart + seconds(i));
    ASSERT_LE(cache.size(), 64u);
  }
  EXPECT_GE(cache.size(), 48u) << "the shards together use most of the bound";
  EXPECT_TRUE(cache.find("n999.test", kStart + seconds(1000)));
  EXPECT_FALSE(cache.find("n0.test", kStart + seconds(1000)));
}

TEST(DnsCache, KeepsNothingWithZeroCapacityOrZeroTtl) {
  DnsCache disabled(0);
  disabled.store("x.test", found(1), seconds(60), kStart);
  EXPECT_FALSE(disabled.find("x.test", kStart));

  DnsCache cache(10);
  cache.store("x.test", found(1), seconds(0), kStart);
  EXPECT_FALSE(cache.find("x.test", kStart));
}

TEST(DnsCache, KeepsNegativeAnswers) {
  DnsCache cache(10);
  DnsAnswer not_listed;
  not_listed.status = DnsStatus::kNotFound;
  cache.store("1.0.0.127.key.authbl.test", not_listed, seconds(300), kStart);
  const auto hit = cache.find("1.0.0.127.key.authbl.test", kStart + seconds(299));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, DnsStatus::kNotFound);
}

}  // namespace
}  // namespace saslguard::enrich
