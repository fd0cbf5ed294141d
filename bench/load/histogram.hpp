// histogram.hpp — HDR-style log-linear latency histogram: 128 linear sub-buckets per power of two,
// so any recorded value is reported within 0.4 %. Recording is a shift and an increment; one
// histogram per thread, merged once at the end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace saslguard::bench {

class LatencyHistogram {
 public:
  void record(uint64_t value_ns);
  void merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The value at quantile q in [0, 1] (the midpoint of its bucket, clamped to the exact max).
  uint64_t quantile(double q) const;

 private:
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128
  static constexpr unsigned kMaxShift = 64 - kSubBucketBits - 1;
  // Values below 2 * kSubBuckets are exact; above, each power of two has kSubBuckets buckets.
  static constexpr size_t kBuckets = 2 * kSubBuckets + kMaxShift * kSubBuckets;

  static size_t bucketOf(uint64_t value);
  static uint64_t midpointOf(size_t bucket);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace saslguard::bench
