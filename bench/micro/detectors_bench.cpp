// detectors_bench.cpp — one benchmark per detector: evaluate() alone, on a parsed request, for
// the case that answers nothing and for each way it can match. A detector that lands adds its
// BM_Detector_<name> here (with plan() when it has one).
#include <benchmark/benchmark.h>

#include "engine/detectors/denylist.hpp"
#include "engine/detectors/geo.hpp"
#include "engine/detectors/quota.hpp"
#include "harness/harness.hpp"
#include "protocol/parser.hpp"

#include <cstdlib>
#include <filesystem>

namespace saslguard::bench {
namespace {

using protocol::Action;

// A parsed request that stays valid as long as this object lives.
struct ParsedRequest {
  std::string text;
  protocol::Request request;
  ParsedRequest(std::string_view account, std::string_view client, bool end_of_message = false)
      : text(postfix37Request(account, client)) {
    if (end_of_message) {  // what quota counts: END-OF-MESSAGE with the message's recipients
      text.replace(text.find("RCPT"), 4, "END-OF-MESSAGE");
      text.replace(text.find("recipient_count=0"), 17, "recipient_count=3");
    }
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

// plan() then evaluate() for a counted message, with the total the store would return: under
// the quota (the usual case), over it (HOLD, reason and evidence built) and over twice (REJECT).
void BM_Detector_Quota(benchmark::State& state, std::uint64_t total, Action expected) {
  const auto detector = *engine::QuotaDetector::create(benchSettings().detectors.quota);
  const ParsedRequest parsed("alice@example.org", "198.51.100.23", true);
  const engine::Identity identity{"alice@example.org", true};
  const engine::DetectorContext context{parsed.request, identity, Clock::now()};
  const store::CounterResult counter{total, true};
  Action action = Action::Dunno;
  for (auto _ : state) {
    store::Batch batch;
    detector->plan(context, batch);
    auto verdict = detector->evaluate(context, {std::span(&counter, 1), {}});
    action = verdict.action;
    benchmark::DoNotOptimize(batch);
    benchmark::DoNotOptimize(verdict);
  }
  if (action != expected) state.SkipWithError("unexpected verdict");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Detector_Quota, under, 40, Action::Dunno);
BENCHMARK_CAPTURE(BM_Detector_Quota, hold, 1600, Action::Hold);
BENCHMARK_CAPTURE(BM_Detector_Quota, reject, 3100, Action::Reject);

// The MaxMind DB bench/run uses (bench/make-geo-db.pl: every public /8 one of 20 countries),
// written once per process into $TMPDIR; null when perl or its writer module is missing.
std::shared_ptr<enrich::GeoIpDatabase> benchGeoDatabase() {
  static const auto database = []() -> std::shared_ptr<enrich::GeoIpDatabase> {
    static TempDirectory dir{"saslguard-micro-geo"};
    const auto path = (dir.path() / "geo.mmdb").string();
    const auto command = std::string(SASLGUARD_SOURCE_DIR) + "/bench/make-geo-db.pl " + path;
    if (std::system(command.c_str()) != 0) return nullptr;
    auto opened = enrich::GeoIpDatabase::open(path);
    if (!opened) return nullptr;
    return std::shared_ptr<enrich::GeoIpDatabase>(std::move(*opened));
  }();
  return database;
}

// The country of one address, from a memory-mapped MaxMind DB.
void BM_GeoIp_Country(benchmark::State& state) {
  const auto database = benchGeoDatabase();
  if (!database) return state.SkipWithError("cannot write the GeoIP database (perl writer)");
  std::optional<std::string> country;
  for (auto _ : state) {
    country = database->country("81.2.69.142");
    benchmark::DoNotOptimize(country);
  }
  if (!country) state.SkipWithError("no country");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GeoIp_Country);

// plan() (country lookup, four set operations) then evaluate() with the counts the store would
// return: within the limits, and over max_countries (REJECT, reason and evidence built).
void BM_Detector_Geo(benchmark::State& state, std::uint32_t foreign_countries, Action expected) {
  const auto database = benchGeoDatabase();
  if (!database) return state.SkipWithError("cannot write the GeoIP database (perl writer)");
  config::GeoSettings settings;
  settings.enabled = true;
  const auto detector = *engine::GeoDetector::create(settings, database);
  const ParsedRequest parsed("alice@example.org", "81.2.69.142");
  const engine::Identity identity{"alice@example.org", true};
  const engine::DetectorContext context{parsed.request, identity, Clock::now()};
  const store::SetResult sets[4] = {{foreign_countries, false}, {0, false}, {2, false}, {0, false}};
  Action action = Action::Dunno;
  for (auto _ : state) {
    store::Batch batch;
    detector->plan(context, batch);
    auto verdict = detector->evaluate(context, {{}, std::span(sets, 4)});
    action = verdict.action;
    benchmark::DoNotOptimize(batch);
    benchmark::DoNotOptimize(verdict);
  }
  if (action != expected) state.SkipWithError("unexpected verdict");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Detector_Geo, within, 2, Action::Dunno);
BENCHMARK_CAPTURE(BM_Detector_Geo, over, 4, Action::Reject);

}  // namespace
}  // namespace saslguard::bench
