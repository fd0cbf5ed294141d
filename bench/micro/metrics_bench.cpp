// metrics_bench.cpp — what the metrics add to one policy request: the reply count with its stage,
// action and latency bucket (two clock reads included, as in the connection), a verdict count,
// and, for scale, one scrape (summation and text) that runs off the request path.
#include <benchmark/benchmark.h>

#include <chrono>

#include "admin/metrics_endpoint.hpp"
#include "harness/harness.hpp"
#include "metrics/request_labels.hpp"
#include "protocol/parser.hpp"

namespace saslguard::bench {
namespace {

// The connection's whole per-request cost: a clock read when the request is parsed, the stage
// (protocol_state compared), a clock read and the counter increments when the reply is queued.
void BM_CountReplyWithLatency(benchmark::State& state) {
  protocol::RequestParser parser;
  protocol::Request request;
  const auto input = postfix37Request();  // the request's views point into it
  parser.parse(input, request);
  for (auto _ : state) {
    const auto parsed_at = std::chrono::steady_clock::now();
    metrics::countReply(request, protocol::Action::Dunno, parsed_at);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CountReplyWithLatency);
BENCHMARK(BM_CountReplyWithLatency)->Threads(2);

// The increments alone, without the clock: what the labels and the histogram cost.
void BM_CountReplyIncrementsOnly(benchmark::State& state) {
  for (auto _ : state) {
    metrics::countReply(metrics::StageLabel::Rcpt, metrics::ActionLabel::Dunno,
                        std::chrono::microseconds(40));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CountReplyIncrementsOnly);

// A verdict with an opinion (only those are counted): the detector's name is compared.
void BM_CountVerdict(benchmark::State& state) {
  for (auto _ : state) metrics::countVerdict("denylist", protocol::Action::Reject, false);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CountVerdict);

// One GET /metrics body (no gauge sources): off the request path, for scale.
void BM_RenderPrometheus(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(admin::renderPrometheus({}));
}
BENCHMARK(BM_RenderPrometheus);

}  // namespace
}  // namespace saslguard::bench
