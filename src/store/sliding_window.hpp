// sliding_window.hpp — a counter over a sliding time window kept as a sparse ring: only the
// non-empty buckets are stored, as {bucket index, count} in ascending index order, so an account
// that sends a few messages a day costs a few bytes instead of `buckets` slots. The first four
// buckets live inside the object (no allocation, no extra cache miss).
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <optional>

#include "store/store.hpp"

namespace saslguard::store {

class SlidingWindow {
 public:
  struct Bucket {
    std::uint32_t index = 0;  // unix seconds / granularity
    std::uint32_t count = 0;
  };
  using Buckets = boost::container::small_vector<Bucket, 4>;

  SlidingWindow() = default;
  // granularity = window_s / buckets (at least one second).
  SlidingWindow(std::uint32_t window_s, std::uint32_t buckets);
  // Rebuilds a window from its persisted form (buckets ascending by index).
  static SlidingWindow restore(std::uint32_t window_s, std::uint32_t granularity_s,
                               Buckets buckets);

  // CounterOp semantics: adds `amount` at now_s unless the new total would reach
  // `add_only_below`; reports the total including the amount either way. Amount 0 only reads.
  CounterResult apply(std::uint64_t amount, std::optional<std::uint64_t> add_only_below,
                      std::int64_t now_s);
  // The window's total at now_s, without changing anything.
  std::uint64_t total(std::int64_t now_s) const;
  // Drops the buckets that have left the window.
  void prune(std::int64_t now_s);
  bool empty() const { return buckets_.empty(); }

  bool hasShape(std::uint32_t window_s, std::uint32_t buckets) const;
  // Adopts another window length or granularity (a configuration change), moving each bucket's
  // count into the new bucket that holds its start time.
  void reshape(std::uint32_t window_s, std::uint32_t buckets);

  std::uint32_t windowSeconds() const { return window_s_; }
  std::uint32_t granularitySeconds() const { return granularity_s_; }
  const Buckets& buckets() const { return buckets_; }

 private:
  // How many consecutive buckets the window spans.
  std::int64_t span() const { return (window_s_ + granularity_s_ - 1) / granularity_s_; }
  std::int64_t indexAt(std::int64_t now_s) const {
    return (now_s < 0 ? 0 : now_s) / granularity_s_;
  }

  Buckets buckets_;
  std::uint32_t window_s_ = 1;
  std::uint32_t granularity_s_ = 1;
};

}  // namespace saslguard::store
