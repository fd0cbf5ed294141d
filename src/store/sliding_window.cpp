// sliding_window.cpp — see sliding_window.hpp. A count added at time t stays in the total while
// the current bucket index is below index(t) + span, i.e. for between window_s - granularity
// and window_s seconds: the usual ring-bucket approximation of a sliding window.
#include "store/sliding_window.hpp"

#include <algorithm>
#include <limits>

namespace saslguard::store {
namespace {

std::uint32_t granularityOf(std::uint32_t window_s, std::uint32_t buckets) {
  return std::max<std::uint32_t>(1, window_s / std::max<std::uint32_t>(1, buckets));
}

void addSaturating(std::uint32_t& count, std::uint64_t amount) {
  const std::uint64_t sum = std::uint64_t{count} + amount;
  count = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(sum, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

SlidingWindow::SlidingWindow(std::uint32_t window_s, std::uint32_t buckets)
    : window_s_(std::max<std::uint32_t>(1, window_s)),
      granularity_s_(granularityOf(window_s_, buckets)) {}

SlidingWindow SlidingWindow::restore(std::uint32_t window_s, std::uint32_t granularity_s,
                                     Buckets buckets) {
  SlidingWindow window;
  window.window_s_ = std::max<std::uint32_t>(1, window_s);
  window.granularity_s_ = std::max<std::uint32_t>(1, granularity_s);
  window.buckets_ = std::move(buckets);
  return window;
}

CounterResult SlidingWindow::apply(std::uint64_t amount,
                                   std::optional<std::uint64_t> add_only_below,
                                   std::int64_t now_s) {
  prune(now_s);
  std::uint64_t sum = 0;
  for (const auto& bucket : buckets_) sum += bucket.count;
  CounterResult result{sum + amount, false};
  if (amount == 0) return result;
  if (add_only_below && result.total >= *add_only_below) return result;

  result.added = true;
  const auto index = static_cast<std::uint32_t>(indexAt(now_s));
  if (buckets_.empty() || buckets_.back().index < index) {
    buckets_.push_back(Bucket{index, 0});
    addSaturating(buckets_.back().count, amount);
    return result;
  }
  // The clock went back (or the same bucket): keep the vector sorted.
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), index,
                             [](const Bucket& b, std::uint32_t i) { return b.index < i; });
  if (it == buckets_.end() || it->index != index) it = buckets_.insert(it, Bucket{index, 0});
  addSaturating(it->count, amount);
  return result;
}

std::uint64_t SlidingWindow::total(std::int64_t now_s) const {
  const std::int64_t oldest_live = indexAt(now_s) - span() + 1;
  std::uint64_t sum = 0;
  for (const auto& bucket : buckets_) {
    if (bucket.index >= oldest_live) sum += bucket.count;
  }
  return sum;
}

void SlidingWindow::prune(std::int64_t now_s) {
  const std::int64_t oldest_live = indexAt(now_s) - span() + 1;
  auto first_live = buckets_.begin();
  while (first_live != buckets_.end() && first_live->index < oldest_live) ++first_live;
  buckets_.erase(buckets_.begin(), first_live);
}

bool SlidingWindow::hasShape(std::uint32_t window_s, std::uint32_t buckets) const {
  return window_s_ == std::max<std::uint32_t>(1, window_s) &&
         granularity_s_ == granularityOf(window_s_, buckets);
}

void SlidingWindow::reshape(std::uint32_t window_s, std::uint32_t buckets) {
  const std::uint32_t old_granularity = granularity_s_;
  window_s_ = std::max<std::uint32_t>(1, window_s);
  granularity_s_ = granularityOf(window_s_, buckets);
  Buckets moved;
  for (const auto& bucket : buckets_) {
    const std::uint64_t start_s = std::uint64_t{bucket.index} * old_granularity;
    const auto index = static_cast<std::uint32_t>(start_s / granularity_s_);
    if (moved.empty() || moved.back().index != index) moved.push_back(Bucket{index, 0});
    addSaturating(moved.back().count, bucket.count);
  }
  buckets_ = std::move(moved);
}

}  // namespace saslguard::store
