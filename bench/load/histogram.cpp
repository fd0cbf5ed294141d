// histogram.cpp — bucket arithmetic of the log-linear latency histogram (see histogram.hpp).
// Bucket b >= 256 covers [top << shift, (top + 1) << shift) with top in [128, 256).
#include "load/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace saslguard::bench {

size_t LatencyHistogram::bucketOf(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);
  unsigned shift = static_cast<unsigned>(std::bit_width(value)) - 1 - kSubBucketBits;  // >= 1
  uint64_t top = value >> shift;                                                       // [128, 256)
  return static_cast<size_t>(2 * kSubBuckets + (shift - 1) * kSubBuckets + (top - kSubBuckets));
}

uint64_t LatencyHistogram::midpointOf(size_t bucket) {
  if (bucket < 2 * kSubBuckets) return bucket;
  size_t above = bucket - 2 * kSubBuckets;
  unsigned shift = static_cast<unsigned>(above / kSubBuckets) + 1;
  uint64_t top = kSubBuckets + above % kSubBuckets;
  return (top << shift) + (uint64_t{1} << (shift - 1));
}

void LatencyHistogram::record(uint64_t value_ns) {
  ++counts_[bucketOf(value_ns)];
  ++count_;
  max_ = std::max(max_, value_ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  // The rank of the sample at q, 1-based, as in "p99 of 1000 samples is the 990th".
  auto rank =
      static_cast<uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(midpointOf(i), max_);
  }
  return max_;
}

}  // namespace saslguard::bench
