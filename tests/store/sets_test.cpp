// sets_test.cpp — distinct-value sets with per-entry expiry (client IPs, countries), through
// Store::execute; the compact member values (inline, IPv6 in binary, long texts on the heap).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "store/distinct_set.hpp"
#include "store_test_util.hpp"

namespace saslguard::store::testing {
namespace {

using Sets = StoreTest;

SetResult touchOne(EmbeddedStore& store, const std::string& value, TimePoint now,
                   std::uint32_t ttl_s = 100) {
  auto result = store.execute(batch("alice", {}, {touch("geo:ips", value, ttl_s)}), now);
  EXPECT_TRUE(result) << result.error().message;
  return result ? result->sets.at(0) : SetResult{};
}

// Texts of every storage kind: inline up to 16 bytes, canonical IPv6 in binary, the rest heap.
const std::vector<std::pair<std::string, bool>> kValuesAndWhetherOnHeap = {
    {"", false},
    {"DE", false},
    {"192.0.2.1", false},
    {"255.255.255.255", false},
    {"sixteen-bytes-ok", false},
    {"2001:db8::1:2:3:4", false},  // 17 characters, canonical: binary
    {"2001:db8:1234:5678:9abc:def0:1234:5678", false},
    {"::ffff:192.168.100.200", false},
    {"2001:0db8:0000:0000:0000:0000:0000:0001", true},  // not canonical: kept as text
    {"2001:DB8::1:2:3:4", true},                        // upper case is not canonical either
    {"seventeen-bytes-x", true},
    {"a-long-value-that-is-no-address@example.org", true},
};

TEST(SetValue, GivesBackExactlyTheTextItWasGiven) {
  for (const auto& [text, on_heap] : kValuesAndWhetherOnHeap) {
    const SetValue value(text);
    EXPECT_EQ(value.text(), text);
    EXPECT_EQ(value.onHeap(), on_heap) << text;
    EXPECT_TRUE(value.equals(text)) << text;
    for (const auto& [other, ignored] : kValuesAndWhetherOnHeap) {
      if (other != text) {
        EXPECT_FALSE(value.equals(other)) << text << " vs " << other;
      }
    }
    SetValue copy(value);
    SetValue assigned;
    assigned = copy;
    SetValue moved(std::move(copy));
    EXPECT_EQ(assigned.text(), text);
    EXPECT_EQ(moved.text(), text);
    assigned = std::move(moved);
    EXPECT_EQ(assigned.text(), text);
  }
}

TEST_F(Sets, EveryKindOfValueSurvivesCloseAndReopen) {
  {
    auto store = open();
    TimePoint now = at(0);
    for (const auto& [text, ignored] : kValuesAndWhetherOnHeap) {
      if (!text.empty()) touchOne(*store, text, now, 3600);
    }
    ASSERT_TRUE(store->close());
  }
  auto store = open();
  auto view = store->view("alice", at(1));
  ASSERT_TRUE(view);
  ASSERT_EQ(view->sets.size(), 1u);
  std::vector<std::string> listed;
  for (const auto& entry : view->sets[0].entries) listed.push_back(entry.value);
  for (const auto& [text, ignored] : kValuesAndWhetherOnHeap) {
    if (text.empty()) continue;
    EXPECT_NE(std::find(listed.begin(), listed.end(), text), listed.end()) << text;
    EXPECT_FALSE(touchOne(*store, text, at(2), 3600).inserted) << text << " is known";
  }
}

TEST_F(Sets, CountsDistinctValues) {
  auto store = open();
  EXPECT_EQ(touchOne(*store, "192.0.2.1", at(0)).count, 1u);
  EXPECT_EQ(touchOne(*store, "192.0.2.2", at(1)).count, 2u);
  EXPECT_EQ(touchOne(*store, "192.0.2.1", at(2)).count, 2u) << "a value counts once";
  EXPECT_EQ(touchOne(*store, "2001:db8::1:2:3:4", at(3)).count, 3u);
}

TEST_F(Sets, InsertedTellsWhetherTheValueWasNew) {
  auto store = open();
  EXPECT_TRUE(touchOne(*store, "DE", at(0)).inserted);
  EXPECT_FALSE(touchOne(*store, "DE", at(1)).inserted);
  EXPECT_TRUE(touchOne(*store, "FR", at(2)).inserted);
  EXPECT_TRUE(touchOne(*store, "DE", at(200)).inserted) << "an expired value is new again";
}

TEST_F(Sets, EntriesExpireOneByOneTtlAfterTheyWereLastSeen) {
  auto store = open();
  touchOne(*store, "a", at(0));
  touchOne(*store, "b", at(30));
  EXPECT_EQ(touchOne(*store, "", at(99)).count, 2u);
  EXPECT_EQ(touchOne(*store, "", at(100)).count, 1u) << "a expired, b is live";
  EXPECT_EQ(touchOne(*store, "", at(130)).count, 0u);
}

TEST_F(Sets, TouchingAgainRefreshesLastSeen) {
  auto store = open();
  touchOne(*store, "a", at(0));
  touchOne(*store, "a", at(60));
  EXPECT_EQ(touchOne(*store, "", at(150)).count, 1u) << "lives 100 s from the second touch";
  EXPECT_EQ(touchOne(*store, "", at(160)).count, 0u);
}

TEST_F(Sets, EmptyValueOnlyCounts) {
  auto store = open();
  auto unknown = touchOne(*store, "", at(0));
  EXPECT_EQ(unknown.count, 0u);
  EXPECT_FALSE(unknown.inserted);
  EXPECT_EQ(store->stats().accounts, 0u) << "counting does not create the account";
  touchOne(*store, "a", at(1));
  auto counted = touchOne(*store, "", at(2));
  EXPECT_EQ(counted.count, 1u);
  EXPECT_FALSE(counted.inserted);
}

TEST_F(Sets, ViewListsLiveEntriesWithLastSeen) {
  auto store = open();
  touchOne(*store, "a", at(0));
  touchOne(*store, "b", at(50));
  touchOne(*store, "b", at(70));
  auto view = store->view("alice", at(120));
  ASSERT_TRUE(view);
  ASSERT_EQ(view->sets.size(), 1u);
  EXPECT_EQ(view->sets[0].name, "geo:ips");
  ASSERT_EQ(view->sets[0].entries.size(), 1u);
  EXPECT_EQ(view->sets[0].entries[0].value, "b");
  EXPECT_EQ(view->sets[0].entries[0].last_seen, at(70));
}

TEST_F(Sets, AFullSetReplacesItsLeastRecentlySeenEntry) {
  auto o = options();
  o.max_set_entries = 3;
  auto store = open(o);
  touchOne(*store, "a", at(0));
  touchOne(*store, "b", at(1));
  touchOne(*store, "c", at(2));
  touchOne(*store, "a", at(3));
  auto d = touchOne(*store, "d", at(4));  // b is the least recently seen
  EXPECT_EQ(d.count, 3u);
  EXPECT_TRUE(d.inserted);
  EXPECT_TRUE(touchOne(*store, "b", at(5)).inserted) << "b had made room";
}

TEST_F(Sets, AmongEquallyOldEntriesTheSmallestTextMakesRoom) {
  auto o = options();
  o.max_set_entries = 3;
  auto store = open(o);
  touchOne(*store, "b", at(0));
  touchOne(*store, "a", at(0));
  touchOne(*store, "c", at(0));
  EXPECT_TRUE(touchOne(*store, "d", at(1)).inserted);  // a, b and c tie: a goes (as in Redis)
  EXPECT_FALSE(touchOne(*store, "b", at(2)).inserted);
  EXPECT_FALSE(touchOne(*store, "c", at(2)).inserted);
  EXPECT_TRUE(touchOne(*store, "a", at(3)).inserted) << "a had made room";
}

TEST_F(Sets, CountersAndSetsOfOneBatchRunTogether) {
  auto store = open();
  auto result =
      store->execute(batch("alice", {counter("quota", 1), counter("quota:big", 2, 3600, 60)},
                           {touch("geo:ips", "192.0.2.1"), touch("geo:countries", "DE")}),
                     at(0));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->counters.size(), 2u);
  ASSERT_EQ(result->sets.size(), 2u);
  EXPECT_FALSE(result->mark);
  EXPECT_EQ(result->counters[1].total, 2u);
  EXPECT_EQ(result->sets[1].count, 1u);
}

TEST_F(Sets, ForgetSetsDropsOnlyTheNamedSetsAndIsDurable) {
  const auto o = options(at(10));
  // The child ends with _exit() right after forgetSets, without close(): what it wrote must
  // already be on disk, as after a crash.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = EmbeddedStore::open(o);
    if (!store) ::_exit(10);
    if (!(*store)->execute(batch("alice", {counter("quota:60", 3)},
                                 {touch("geo:ips", "192.0.2.1"), touch("geo:countries", "DE"),
                                  touch("other:set", "x")}),
                           at(1))) {
      ::_exit(11);
    }
    if (!(*store)->flush() || !(*store)->mark("alice", mark("geo", "too many countries"), at(2))) {
      ::_exit(12);
    }
    auto dropped = (*store)->forgetSets("alice", "geo:", at(3));
    if (!dropped || *dropped != 2) ::_exit(13);
    auto again = (*store)->forgetSets("alice", "geo:", at(4));
    if (!again || *again != 0) ::_exit(14);
    auto unknown = (*store)->forgetSets("nobody", "geo:", at(4));
    if (!unknown || *unknown != 0) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the child's step that failed: exit code";

  auto reopened = open(o);
  auto view = reopened->view("alice", at(10));
  ASSERT_TRUE(view) << view.error().message;
  ASSERT_EQ(view->sets.size(), 1u);
  EXPECT_EQ(view->sets[0].name, "other:set");
  ASSERT_EQ(view->counters.size(), 1u) << "counters are untouched";
  EXPECT_EQ(view->counters[0].total, 3u);
  EXPECT_TRUE(view->mark.has_value()) << "the mark is cleared separately";
}

}  // namespace
}  // namespace saslguard::store::testing
