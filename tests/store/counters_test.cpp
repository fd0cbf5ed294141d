// counters_test.cpp — counters over sliding windows, as detectors see them through
// Store::execute, plus the SlidingWindow details (reshaping, clocks that go back).
#include <gtest/gtest.h>

#include "store/sliding_window.hpp"
#include "store_test_util.hpp"

namespace saslguard::store::testing {
namespace {

using Counters = StoreTest;

TEST_F(Counters, AddsAndSumsWithinTheWindow) {
  auto store = open();
  auto first = store->execute(batch("alice", {counter("quota", 3)}), at(0));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->counters[0].total, 3u);
  EXPECT_TRUE(first->counters[0].added);
  auto second = store->execute(batch("alice", {counter("quota", 4)}), at(5));
  EXPECT_EQ(second->counters[0].total, 7u);
  EXPECT_EQ(total(*store, "alice", "quota", at(59)), 7u);
  EXPECT_EQ(total(*store, "bob", "quota", at(59)), 0u) << "accounts are independent";
}

// window 60 s in 6 buckets of 10 s: a count leaves the total when its bucket is 6 buckets old.
TEST_F(Counters, SlidesAcrossBucketBoundaries) {
  auto store = open();
  ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 1)}), at(0)));   // bucket 0
  ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 2)}), at(25)));  // bucket 2
  ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 4)}), at(59)));  // bucket 5
  EXPECT_EQ(total(*store, "alice", "quota", at(59)), 7u);
  EXPECT_EQ(total(*store, "alice", "quota", at(60)), 6u) << "bucket 0 left the window";
  EXPECT_EQ(total(*store, "alice", "quota", at(79)), 6u);
  EXPECT_EQ(total(*store, "alice", "quota", at(80)), 4u) << "bucket 2 left the window";
  EXPECT_EQ(total(*store, "alice", "quota", at(109)), 4u);
  EXPECT_EQ(total(*store, "alice", "quota", at(110)), 0u) << "bucket 5 left the window";
}

TEST_F(Counters, KeepsSeveralWindowsPerAccount) {
  auto store = open();
  auto result = store->execute(
      batch("alice", {counter("quota:86400", 10, 86400, 100), counter("quota:3600", 10, 3600, 60),
                      counter("logins:60", 1, 60, 6)}),
      at(0));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->counters.size(), 3u);
  ASSERT_TRUE(store->execute(
      batch("alice", {counter("quota:86400", 5, 86400, 100), counter("quota:3600", 5, 3600, 60)}),
      at(3600)));
  EXPECT_EQ(total(*store, "alice", "quota:86400", at(3600), 86400, 100), 15u);
  EXPECT_EQ(total(*store, "alice", "quota:3600", at(3600), 3600, 60), 5u);
  EXPECT_EQ(total(*store, "alice", "logins:60", at(3600)), 0u);
}

TEST_F(Counters, AddOnlyBelowDoesNotAddAtTheLimitButReportsTheTotal) {
  auto store = open();
  auto op = [](std::uint64_t amount) { return counter("quota", amount, 60, 6, 10); };
  auto r1 = store->execute(batch("alice", {op(6)}), at(0));
  EXPECT_EQ(r1->counters[0].total, 6u);
  EXPECT_TRUE(r1->counters[0].added);
  auto r2 = store->execute(batch("alice", {op(4)}), at(1));  // 10 reaches the limit
  EXPECT_EQ(r2->counters[0].total, 10u);
  EXPECT_FALSE(r2->counters[0].added);
  auto r3 = store->execute(batch("alice", {op(3)}), at(2));
  EXPECT_EQ(r3->counters[0].total, 9u);
  EXPECT_TRUE(r3->counters[0].added);
  EXPECT_EQ(total(*store, "alice", "quota", at(3)), 9u);
}

TEST_F(Counters, AnAllOrNoneGroupAddsToEveryCounterOrToNone) {
  auto store = open();
  auto ops = [](std::uint64_t amount) {
    auto day = counter("quota:86400", amount, 86400, 100, 100);
    auto hour = counter("quota:3600", amount, 3600, 100, 10);
    day.all_or_none_group = hour.all_or_none_group = 1;
    return std::vector<CounterOp>{day, hour};
  };
  auto r1 = store->execute(batch("alice", ops(6)), at(0));
  EXPECT_TRUE(r1->counters[0].added && r1->counters[1].added);
  auto r2 = store->execute(batch("alice", ops(4)), at(1));  // the hour reaches its limit
  EXPECT_EQ(r2->counters[0].total, 10u);
  EXPECT_FALSE(r2->counters[0].added) << "the day would take it, but the group is blocked";
  EXPECT_EQ(r2->counters[1].total, 10u);
  EXPECT_FALSE(r2->counters[1].added);
  EXPECT_EQ(total(*store, "alice", "quota:86400", at(2), 86400, 100), 6u);
  auto r3 = store->execute(batch("alice", ops(3)), at(2));
  EXPECT_TRUE(r3->counters[0].added && r3->counters[1].added);
  EXPECT_EQ(total(*store, "alice", "quota:86400", at(3), 86400, 100), 9u);
}

TEST_F(Counters, AmountZeroReadsWithoutStoringAnything) {
  auto store = open();
  auto read = store->execute(batch("nobody", {counter("quota", 0)}), at(0));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->counters[0].total, 0u);
  EXPECT_FALSE(read->counters[0].added);
  EXPECT_EQ(store->stats().accounts, 0u) << "a read does not create the account";

  ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 2)}), at(0)));
  auto again = store->execute(batch("alice", {counter("quota", 0)}), at(1));
  EXPECT_EQ(again->counters[0].total, 2u);
  EXPECT_FALSE(again->counters[0].added);
  EXPECT_EQ(total(*store, "alice", "quota", at(2)), 2u) << "reading changed nothing";
}

TEST_F(Counters, RejectsAccountsTheStoreCannotKeep) {
  auto store = open();
  EXPECT_FALSE(store->execute(batch("", {counter("quota", 1)}), at(0)));
  EXPECT_FALSE(store->execute(batch(std::string(600, 'a'), {counter("quota", 1)}), at(0)));
  EXPECT_FALSE(store->execute(batch(std::string("a\0b", 3), {counter("quota", 1)}), at(0)));
}

TEST(SlidingWindow, ReshapingKeepsCountsInTheBucketHoldingTheirStart) {
  SlidingWindow window(60, 6);  // 10 s buckets
  window.apply(1, std::nullopt, 100);
  window.apply(2, std::nullopt, 110);
  window.apply(4, std::nullopt, 125);
  window.reshape(120, 4);  // 30 s buckets: 100 and 110 fall into [90,120), 125 into [120,150)
  EXPECT_EQ(window.granularitySeconds(), 30u);
  ASSERT_EQ(window.buckets().size(), 2u);
  EXPECT_EQ(window.buckets()[0].count, 3u);
  EXPECT_EQ(window.buckets()[1].count, 4u);
  EXPECT_EQ(window.total(125), 7u);
}

TEST(SlidingWindow, ClockGoingBackKeepsBucketsOrdered) {
  SlidingWindow window(60, 6);
  window.apply(1, std::nullopt, 50);
  window.apply(2, std::nullopt, 30);  // an earlier bucket, inserted before
  window.apply(4, std::nullopt, 52);  // same bucket as the first
  ASSERT_EQ(window.buckets().size(), 2u);
  EXPECT_LT(window.buckets()[0].index, window.buckets()[1].index);
  EXPECT_EQ(window.total(55), 7u);
}

TEST(SlidingWindow, BucketsFinerThanASecondBecomeOneSecond) {
  SlidingWindow window(10, 100);
  EXPECT_EQ(window.granularitySeconds(), 1u);
  window.apply(1, std::nullopt, 0);
  EXPECT_EQ(window.total(9), 1u);
  EXPECT_EQ(window.total(10), 0u);
}

}  // namespace
}  // namespace saslguard::store::testing
