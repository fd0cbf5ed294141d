// detectors_bench.cpp — one benchmark per detector: evaluate() alone, on a parsed request, for
// the case that answers nothing and for each way it can match. A detector that lands adds its
// BM_Detector_<name> here (with plan() when it has one).
#include <benchmark/benchmark.h>

#include "engine/detectors/denylist.hpp"
#include "harness/harness.hpp"
#include "protocol/parser.hpp"

namespace saslguard::bench {
namespace {

// A parsed request that stays valid as long as this object lives.
struct ParsedRequest {
  std::string text;
  protocol::Request request;
  ParsedRequest(std::string_view account, std::string_view client)
      : text(postfix37Request(account, client)) {
    protocol::RequestParser parser;
    if (parser.parse(text, request).status != protocol::ParseStatus::Complete) std::abort();
  }
};

void BM_Detector_Denylist(benchmark::State& state, std::string_view account,
                          std::string_view client, bool expect_match) {
  const auto detector = *engine::DenylistDetector::create(benchSettings().detectors.denylist);
  const ParsedRequest parsed(account, client);
  const engine::Identity identity{std::string(account), true};
  const engine::DetectorContext context{parsed.request, identity, Clock::now()};
  bool matched = false;
  for (auto _ : state) {
    auto verdict = detector->evaluate(context, {});
    matched = verdict.hasOpinion();
    benchmark::DoNotOptimize(verdict);
  }
  if (matched != expect_match) state.SkipWithError("unexpected verdict");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Detector_Denylist, miss, "alice@example.org", "198.51.100.23", false);
BENCHMARK_CAPTURE(BM_Detector_Denylist, account, "listed1@example.net", "198.51.100.23", true);
BENCHMARK_CAPTURE(BM_Detector_Denylist, network, "alice@example.org", "203.0.113.9", true);

}  // namespace
}  // namespace saslguard::bench
