// registry_test.cpp — the compromise registry: mark / getMark / clear / listMarks, re-marks,
// expiring marks, the short circuit in execute() and the audit trail in view().
#include <gtest/gtest.h>

#include "store_test_util.hpp"

namespace saslguard::store::testing {
namespace {

using Registry = StoreTest;

TEST_F(Registry, MarkGetAndClear) {
  auto store = open();
  auto marked = store->mark("alice", mark("reputation", "listed in zen"), at(10));
  ASSERT_TRUE(marked) << marked.error().message;
  EXPECT_TRUE(marked->is_new);
  EXPECT_EQ(marked->mark.first_seen, at(10));
  EXPECT_EQ(marked->mark.last_seen, at(10));

  auto got = store->getMark("alice", at(11));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->detector, "reputation");
  EXPECT_EQ((*got)->reason, "listed in zen");
  EXPECT_EQ((*got)->evidence, R"({"zone":"test"})");
  EXPECT_EQ((*got)->action, "REJECT");
  EXPECT_EQ(store->stats().marks, 1u);

  EXPECT_FALSE(isMarked(*store, "bob", at(11)));
  auto cleared = store->clear("alice", ClearInfo{"operator", "false positive"}, at(20));
  ASSERT_TRUE(cleared);
  EXPECT_TRUE(*cleared);
  EXPECT_FALSE(isMarked(*store, "alice", at(21)));
  EXPECT_FALSE(*store->clear("alice", ClearInfo{"operator", "again"}, at(22)))
      << "clearing an unmarked account reports false";
  EXPECT_EQ(store->stats().marks, 0u);
}

TEST_F(Registry, MarkingAgainKeepsFirstSeenAndTheOriginalReason) {
  auto store = open();
  ASSERT_TRUE(store->mark("alice", mark("reputation", "listed in zen"), at(10)));
  auto again = store->mark("alice", mark("quota", "over quota"), at(50));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->is_new);
  EXPECT_EQ(again->mark.first_seen, at(10));
  EXPECT_EQ(again->mark.last_seen, at(50));
  EXPECT_EQ(again->mark.detector, "reputation");
  EXPECT_EQ(again->mark.reason, "listed in zen");
  EXPECT_EQ(again->mark.hits, 1u);
  EXPECT_EQ((*store->getMark("alice", at(51)))->last_seen, at(50));
}

TEST_F(Registry, MarkedAccountShortCircuitsExecute) {
  auto store = open();
  ASSERT_TRUE(store->execute(batch("alice", {counter("quota", 5)}), at(0)));
  ASSERT_TRUE(store->mark("alice", mark("reputation", "listed"), at(1)));

  auto refused = store->execute(batch("alice", {counter("quota", 5)}, {touch("ips", "a")}), at(2));
  ASSERT_TRUE(refused);
  ASSERT_TRUE(refused->mark);
  EXPECT_EQ(refused->mark->detector, "reputation");
  EXPECT_EQ(refused->mark->hits, 1u);
  EXPECT_EQ(refused->mark->last_seen, at(2));
  EXPECT_TRUE(refused->counters.empty()) << "nothing else ran";
  EXPECT_TRUE(refused->sets.empty());
  EXPECT_EQ((*store->getMark("alice", at(3)))->hits, 1u);

  Batch unchecked = batch("alice", {counter("quota", 0)});
  unchecked.check_registry = false;
  auto read = store->execute(unchecked, at(3));
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->mark);
  EXPECT_EQ(read->counters[0].total, 5u) << "the refused request did not count";
}

TEST_F(Registry, ListMarksPagesInAccountOrder) {
  auto store = open();
  for (const char* account : {"dave", "alice", "erin", "carol", "bob"}) {
    ASSERT_TRUE(store->mark(account, mark("geo", "too many countries"), at(0)));
  }
  auto page1 = store->listMarks("", 2, at(1));
  ASSERT_TRUE(page1);
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].first, "alice");
  EXPECT_EQ((*page1)[1].first, "bob");
  auto page2 = store->listMarks((*page1)[1].first, 2, at(1));
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_EQ((*page2)[0].first, "carol");
  EXPECT_EQ((*page2)[1].first, "dave");
  auto page3 = store->listMarks("dave", 2, at(1));
  ASSERT_EQ(page3->size(), 1u);
  EXPECT_EQ((*page3)[0].first, "erin");
  EXPECT_TRUE(store->listMarks("erin", 2, at(1))->empty());
  EXPECT_EQ(store->listMarks("b", 1, at(1))->at(0).first, "bob") << "after need not exist";
}

TEST_F(Registry, ListMarksShowsHitsCountedSinceTheMark) {
  auto store = open();
  ASSERT_TRUE(store->mark("alice", mark("reputation", "listed"), at(0)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->execute(batch("alice", {}), at(5)));
  auto marks = store->listMarks("", 10, at(6));
  ASSERT_EQ(marks->size(), 1u);
  EXPECT_EQ(marks->at(0).second.hits, 3u);
  EXPECT_EQ(marks->at(0).second.last_seen, at(5));
}

TEST_F(Registry, ExpiredMarksCountAsAbsentAndTheFlusherRetiresThem) {
  auto store = open();
  ASSERT_TRUE(store->mark("alice", mark("geo", "temporary", at(100)), at(0)));
  ASSERT_TRUE(store->mark("bob", mark("geo", "permanent"), at(0)));
  EXPECT_TRUE(isMarked(*store, "alice", at(99)));
  EXPECT_FALSE(isMarked(*store, "alice", at(100)));
  auto result = store->execute(batch("alice", {counter("quota", 1)}), at(101));
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->mark) << "an expired mark does not short-circuit";
  EXPECT_EQ(result->counters[0].total, 1u);
  EXPECT_EQ(store->listMarks("", 10, at(101))->size(), 1u);

  ASSERT_TRUE(store->flush());
  EXPECT_EQ(store->stats().marks, 1u);
  auto view = store->view("alice", at(102));
  ASSERT_TRUE(view);
  ASSERT_EQ(view->audit.size(), 2u);
  EXPECT_EQ(view->audit[0].event, "mark");
  EXPECT_EQ(view->audit[1].event, "expire");
  EXPECT_EQ(view->audit[1].by, "geo");

  auto again = store->mark("alice", mark("quota", "over quota"), at(200));
  EXPECT_TRUE(again->is_new) << "a new mark after expiry";
  EXPECT_EQ(again->mark.first_seen, at(200));
}

TEST_F(Registry, MarkingAgainExtendsAnExpiringMark) {
  auto store = open();
  ASSERT_TRUE(store->mark("alice", mark("geo", "temporary", at(100)), at(0)));
  auto longer = store->mark("alice", mark("geo", "again", at(500)), at(50));
  EXPECT_EQ(longer->mark.expires, at(500));
  auto permanent = store->mark("alice", mark("reputation", "listed"), at(60));
  EXPECT_FALSE(permanent->mark.expires) << "a mark until cleared wins";
}

TEST_F(Registry, AuditEntriesAreVisibleInView) {
  auto store = open();
  ASSERT_TRUE(store->mark("alice", mark("reputation", "listed in zen"), at(10)));
  ASSERT_TRUE(store->clear("alice", ClearInfo{"admin", "customer called"}, at(20)));
  ASSERT_TRUE(store->mark("alicex", mark("quota", "other account"), at(30)));
  auto view = store->view("alice", at(40));
  ASSERT_TRUE(view);
  EXPECT_FALSE(view->mark);
  ASSERT_EQ(view->audit.size(), 2u) << "alicex's entries are not alice's";
  EXPECT_EQ(view->audit[0].event, "mark");
  EXPECT_EQ(view->audit[0].by, "reputation");
  EXPECT_EQ(view->audit[0].reason, "listed in zen");
  EXPECT_EQ(view->audit[0].at, at(10));
  EXPECT_EQ(view->audit[1].event, "clear");
  EXPECT_EQ(view->audit[1].by, "admin");
  EXPECT_EQ(view->audit[1].reason, "customer called");
  EXPECT_EQ(view->audit[1].account, "alice");
}

// A long history: view() shows the newest 200 entries, oldest first, read from the end of the
// account's range (the fuzzer found an account with 10^5 entries taking seconds when the whole
// history was read and cut). Neighbours on either side of the key range stay out.
TEST_F(Registry, ViewShowsTheNewestAuditEntriesOfALongHistory) {
  auto store = open();
  ASSERT_TRUE(store->mark("alic", mark("quota", "before alice"), at(1)));
  ASSERT_TRUE(store->mark("alicex", mark("quota", "after alice"), at(1)));
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(
        store->mark("alice", mark("reputation", "round " + std::to_string(i)), at(10 + 2 * i)));
    ASSERT_TRUE(
        store->clear("alice", ClearInfo{"admin", "round " + std::to_string(i)}, at(11 + 2 * i)));
  }
  auto view = store->view("alice", at(1000));
  ASSERT_TRUE(view);
  ASSERT_EQ(view->audit.size(), 200u);
  EXPECT_EQ(view->audit.front().event, "mark");
  EXPECT_EQ(view->audit.front().reason, "round 50");
  EXPECT_EQ(view->audit.front().at, at(110));
  EXPECT_EQ(view->audit.back().event, "clear");
  EXPECT_EQ(view->audit.back().reason, "round 149");
  for (std::size_t i = 1; i < view->audit.size(); ++i) {
    EXPECT_LT(view->audit[i - 1].at, view->audit[i].at) << i;
    EXPECT_EQ(view->audit[i].account, "alice");
  }
  // The last account of the database (nothing after its range) reads the same way.
  auto last = store->view("alicex", at(1000));
  ASSERT_TRUE(last);
  ASSERT_EQ(last->audit.size(), 1u);
  EXPECT_EQ(last->audit[0].reason, "after alice");
}

TEST_F(Registry, ViewShowsMarkCountersAndSets) {
  auto store = open();
  ASSERT_TRUE(store->execute(
      batch("alice", {counter("quota:3600", 7, 3600, 60)}, {touch("geo:countries", "DE")}), at(0)));
  ASSERT_TRUE(store->mark("alice", mark("quota", "over quota"), at(1)));
  auto view = store->view("alice", at(2));
  ASSERT_TRUE(view);
  EXPECT_EQ(view->account, "alice");
  ASSERT_TRUE(view->mark);
  EXPECT_EQ(view->mark->detector, "quota");
  ASSERT_EQ(view->counters.size(), 1u);
  EXPECT_EQ(view->counters[0].name, "quota:3600");
  EXPECT_EQ(view->counters[0].window_s, 3600u);
  EXPECT_EQ(view->counters[0].total, 7u);
  ASSERT_EQ(view->sets.size(), 1u);
  EXPECT_EQ(view->sets[0].entries.at(0).value, "DE");
}

TEST_F(Registry, AFullDatabaseNamesTheSettingToRaise) {
  auto o = options();
  o.map_size_mb = 1;
  auto store = open(o);
  Mark big = mark("reputation", "listed");
  big.evidence = std::string(4000, 'x');
  Result<MarkOutcome> outcome;
  for (int i = 0; i < 1000 && (outcome = store->mark("a" + std::to_string(i), big, at(0))); ++i) {
  }
  ASSERT_FALSE(outcome) << "a 1 MB map cannot hold 1000 marks of 4 kB";
  EXPECT_NE(outcome.error().message.find("state.lmdb_map_size_mb"), std::string::npos)
      << outcome.error().message;
}

}  // namespace
}  // namespace saslguard::store::testing
