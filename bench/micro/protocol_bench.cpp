// protocol_bench.cpp — the wire format on its own: parsing one real Postfix 3.7 policy request
// (29 attributes, as smtpd sends it at RCPT) and a pipelined stream of generated ones, and
// formatting the replies. No I/O, no state.
#include <benchmark/benchmark.h>

#include "harness/harness.hpp"
#include "protocol/parser.hpp"
#include "protocol/reply.hpp"

namespace saslguard::bench {
namespace {

const std::string kPostfix37Request = postfix37Request();

void BM_ParsePostfix37Request(benchmark::State& state) {
  protocol::RequestParser parser;
  protocol::Request request;
  for (auto _ : state) {
    const auto outcome = parser.parse(kPostfix37Request, request);
    benchmark::DoNotOptimize(outcome);
    benchmark::DoNotOptimize(request.get(protocol::Attr::sasl_username).data());
  }
  if (request.attributes().size() != 29) state.SkipWithError("expected 29 attributes");
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kPostfix37Request.size()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParsePostfix37Request);

// 256 generated requests back to back, parsed as one read of a pipelining client would be.
void BM_ParseGeneratedStream(benchmark::State& state) {
  const Population population(PopulationSettings{});
  const RequestCorpus corpus(population, 256, 7);
  protocol::RequestParser parser;
  protocol::Request request;
  for (auto _ : state) {
    std::string_view rest = corpus.text();
    while (!rest.empty()) {
      const auto outcome = parser.parse(rest, request);
      rest.remove_prefix(outcome.consumed);
    }
    benchmark::DoNotOptimize(request.get(protocol::Attr::sasl_username).data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(corpus.text().size()));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(corpus.size()));
}
BENCHMARK(BM_ParseGeneratedStream);

void BM_AppendReplyDunno(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    protocol::appendReply(out, protocol::Action::Dunno, {});
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendReplyDunno);

void BM_AppendReplyRejectWithText(benchmark::State& state) {
  const auto settings = benchSettings();
  std::string out;
  for (auto _ : state) {
    out.clear();
    protocol::appendReply(out, protocol::Action::Reject, settings.registry.reply_text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendReplyRejectWithText);

}  // namespace
}  // namespace saslguard::bench
