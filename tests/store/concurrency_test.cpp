// concurrency_test.cpp — many request threads on one account give exact results while the
// flusher and registry changes run alongside (run it under -DSASLGUARD_SANITIZE=thread too).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "store_test_util.hpp"

namespace saslguard::store::testing {
namespace {

using Concurrency = StoreTest;

TEST_F(Concurrency, ThreadsHammeringOneAccountGetExactTotals) {
  auto o = options();
  o.start_flusher = true;
  o.flush_interval_ms = 5;  // group commits keep running underneath
  auto store = open(o);
  constexpr int kThreads = 8;
  constexpr int kRequests = 4000;
  constexpr std::uint64_t kCap = 1000;
  std::atomic<std::uint64_t> capped_added{0};
  std::atomic<bool> failed{false};
  std::atomic<bool> done{false};

  std::thread registry([&] {  // marks and clears on other accounts of the same shards
    for (int i = 0; !done.load(); ++i) {
      const std::string account = "other" + std::to_string(i % 16);
      if (!store->mark(account, mark("geo", "test"), at(0))) failed = true;
      if (!store->clear(account, ClearInfo{"test", "test"}, at(0))) failed = true;
      if (!store->listMarks("", 10, at(0))) failed = true;
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        auto result = store->execute(
            batch("shared",
                  {counter("sent", 1, 86400, 100), counter("capped", 1, 86400, 100, kCap)},
                  {touch("ips", "ip" + std::to_string((t * kRequests + i) % 50))}),
            at(i / 100));
        if (!result) {
          failed = true;
          return;
        }
        if (result->counters[1].added) ++capped_added;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  done = true;
  registry.join();

  ASSERT_FALSE(failed);
  EXPECT_EQ(total(*store, "shared", "sent", at(40), 86400, 100), kThreads * kRequests);
  EXPECT_EQ(capped_added.load(), kCap - 1) << "exactly the amounts below the limit were added";
  EXPECT_EQ(total(*store, "shared", "capped", at(40), 86400, 100), kCap - 1);
  auto ips = store->execute(batch("shared", {}, {touch("ips", "")}), at(40));
  EXPECT_EQ(ips->sets[0].count, 50u);

  ASSERT_TRUE(store->close());
  auto reopened = open(o);
  EXPECT_EQ(total(*reopened, "shared", "sent", at(40), 86400, 100), kThreads * kRequests)
      << "close() wrote the final state";
}

}  // namespace
}  // namespace saslguard::store::testing
