// metrics.cpp — the per-thread counter blocks and their summation. Blocks are never freed, so a
// reader can walk the list while threads come and go; their number is bounded by thread count.
#include "metrics/metrics.hpp"

#include <memory>

#include "common/guarded.hpp"

namespace saslguard::metrics {
namespace {

struct Registry {
  Guarded<std::vector<std::unique_ptr<Counters>>> blocks;
  Gauges gauges;
};

Registry& registry() {
  static Registry instance;  // the one process-wide metrics registry
  return instance;
}

}  // namespace

Counters& local() {
  thread_local Counters* mine = [] {
    auto block = std::make_unique<Counters>();
    auto* raw = block.get();
    registry().blocks.lock()->push_back(std::move(block));
    return raw;
  }();
  return *mine;
}

std::vector<Sample> snapshot() {
  std::vector<Sample> samples;
#define SASLGUARD_COUNTER_SAMPLE(name, help) samples.push_back({#name, help, 0});
  SASLGUARD_COUNTERS(SASLGUARD_COUNTER_SAMPLE)
#undef SASLGUARD_COUNTER_SAMPLE
  auto blocks = registry().blocks.lock();
  for (const auto& block : *blocks) {
    std::size_t i = 0;
#define SASLGUARD_COUNTER_SUM(name, help) \
  samples[i++].value += block->name.load(std::memory_order_relaxed);
    SASLGUARD_COUNTERS(SASLGUARD_COUNTER_SUM)
#undef SASLGUARD_COUNTER_SUM
  }
  return samples;
}

DetectorLabel detectorLabel(std::string_view detector) {
  for (std::size_t i = 0; i + 1 < kDetectorLabels; ++i) {
    if (kDetectorNames[i] == detector) return static_cast<DetectorLabel>(i);
  }
  return DetectorLabel::Other;
}

namespace {

template <std::size_t Rows, std::size_t Columns>
void addTable(std::array<std::array<std::uint64_t, Columns>, Rows>& sum,
              const CounterTable<Rows, Columns>& table) {
  for (std::size_t row = 0; row < Rows; ++row) {
    for (std::size_t column = 0; column < Columns; ++column) {
      sum[row][column] += table[row][column].load(std::memory_order_relaxed);
    }
  }
}

}  // namespace

LabelledSnapshot labelledSnapshot() {
  LabelledSnapshot sum;
  auto blocks = registry().blocks.lock();
  for (const auto& block : *blocks) {
    addTable(sum.replies, block->replies);
    addTable(sum.verdicts, block->verdicts);
    addTable(sum.shadow_verdicts, block->shadow_verdicts);
    for (std::size_t i = 0; i < kRequestDurationBuckets; ++i) {
      sum.request_duration_buckets[i] +=
          block->request_duration_buckets[i].load(std::memory_order_relaxed);
    }
    sum.request_duration_sum_ns += block->request_duration_sum_ns.load(std::memory_order_relaxed);
  }
  return sum;
}

Gauges& gauges() {
  return registry().gauges;
}

}  // namespace saslguard::metrics
