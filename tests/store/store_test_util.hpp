// store_test_util.hpp — shared helpers for the store tests: an injected timeline (whole seconds
// after a fixed, day-aligned base), batch builders and a store opened in a temporary directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "store/embedded_store.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::store::testing {

// 2023-11-14 00:00:00 UTC: day-aligned, so bucket boundaries fall on round offsets.
inline constexpr std::int64_t kBaseS = 1'699'920'000;

inline TimePoint at(std::int64_t seconds) {
  return fromUnixMs((kBaseS + seconds) * 1000);
}

inline CounterOp counter(std::string name, std::uint64_t amount, std::uint32_t window_s = 60,
                         std::uint32_t buckets = 6,
                         std::optional<std::uint64_t> add_only_below = std::nullopt) {
  CounterOp op;
  op.name = std::move(name);
  op.window_s = window_s;
  op.buckets = buckets;
  op.amount = amount;
  op.add_only_below = add_only_below;
  return op;
}

inline SetOp touch(std::string name, std::string value, std::uint32_t ttl_s = 100) {
  return SetOp{std::move(name), std::move(value), ttl_s};
}

inline Batch batch(std::string account, std::vector<CounterOp> counters,
                   std::vector<SetOp> sets = {}) {
  Batch b;
  b.account = std::move(account);
  b.counters = std::move(counters);
  b.sets = std::move(sets);
  return b;
}

inline Mark mark(std::string detector, std::string reason,
                 std::optional<TimePoint> expires = std::nullopt) {
  Mark m;
  m.detector = std::move(detector);
  m.reason = std::move(reason);
  m.evidence = R"({"zone":"test"})";
  m.action = "REJECT";
  m.expires = expires;
  return m;
}

inline bool isMarked(EmbeddedStore& store, const std::string& account, TimePoint now) {
  auto got = store.getMark(account, now);
  EXPECT_TRUE(got) << got.error().message;
  return got && got->has_value();
}

class StoreTest : public ::testing::Test {
 protected:
  // Options for a store in this test's directory; open() loads as if the wall clock said `now`.
  EmbeddedStoreOptions options(TimePoint now = at(0)) {
    EmbeddedStoreOptions o;
    o.dir = dir_.path() / "state";
    o.start_flusher = false;
    o.map_size_mb = 64;
    o.clock = [now] { return now; };
    return o;
  }

  std::unique_ptr<EmbeddedStore> open(const EmbeddedStoreOptions& o) {
    auto store = EmbeddedStore::open(o);
    if (!store) ADD_FAILURE() << store.error().message;
    return store ? std::move(*store) : nullptr;
  }
  std::unique_ptr<EmbeddedStore> open(TimePoint now = at(0)) { return open(options(now)); }

  // The total of one counter (a read: amount 0).
  std::uint64_t total(EmbeddedStore& store, const std::string& account, const std::string& name,
                      TimePoint now, std::uint32_t window_s = 60, std::uint32_t buckets = 6) {
    auto result = store.execute(batch(account, {counter(name, 0, window_s, buckets)}), now);
    EXPECT_TRUE(result) << result.error().message;
    return result && !result->counters.empty() ? result->counters[0].total : 0;
  }

  saslguard::testing::TempDir dir_;
};

}  // namespace saslguard::store::testing
