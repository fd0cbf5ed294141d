// harness.cpp — see harness.hpp. Everything here runs before a measurement starts, except the
// stand-in detector, whose plan() is on the measured path like a real detector's.
#include "harness/harness.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "protocol/parser.hpp"

namespace saslguard::bench {

TempDirectory::TempDirectory(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = pattern;
}

TempDirectory::~TempDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

config::Settings benchSettings() {
  config::Settings settings;
  settings.detectors.denylist.enabled = true;
  settings.detectors.denylist.accounts = {"listed1@example.net", "listed2@example.net"};
  settings.detectors.denylist.networks = {"203.0.113.0/24"};
  settings.detectors.quota.enabled = true;
  return settings;
}

namespace {
constexpr std::uint32_t kGeoTtlS = 86400;
}

void GeoStandInDetector::plan(const engine::DetectorContext& context, store::Batch& batch) const {
  batch.sets.push_back(
      {"geo:ips", std::string(context.request.get(protocol::Attr::client_address)), kGeoTtlS});
}

engine::Verdict GeoStandInDetector::evaluate(const engine::DetectorContext&,
                                             const engine::DetectorResults&) const {
  return {};
}

store::Batch stateBatch(const std::string& account, std::string_view client_address) {
  store::Batch batch;
  batch.account = account;
  batch.counters.push_back({"quota:86400", 86400, 100, 1, 3000});
  batch.sets.push_back({"geo:ips", std::string(client_address), kGeoTtlS});
  return batch;
}

void discardLogLines() {
  auto logger = std::make_shared<spdlog::logger>("saslguard",
                                                 std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

std::string postfix37Request(std::string_view account, std::string_view client_address) {
  std::string text;
  const auto put = [&text](std::string_view name_equals, std::string_view value) {
    text.append(name_equals).append(value).push_back('\n');
  };
  put("request=", "smtpd_access_policy");
  put("protocol_state=", "RCPT");
  put("protocol_name=", "ESMTP");
  put("client_address=", client_address);
  put("client_name=", "host-23.dsl.example.net");
  put("client_port=", "53122");
  put("reverse_client_name=", "host-23.dsl.example.net");
  put("server_address=", "192.0.2.25");
  put("server_port=", "587");
  put("helo_name=", "laptop.example.net");
  put("sender=", account);
  put("recipient=", "bob@example.com");
  put("recipient_count=", "0");
  put("queue_id=", "");
  put("instance=", "1a2f.6565f3c1.8d2b1.0");
  put("size=", "24581");
  put("etrn_domain=", "");
  put("stress=", "");
  put("sasl_method=", "PLAIN");
  put("sasl_username=", account);
  put("sasl_sender=", "");
  put("ccert_subject=", "");
  put("ccert_issuer=", "");
  put("ccert_fingerprint=", "");
  put("ccert_pubkey_fingerprint=", "");
  put("encryption_protocol=", "TLSv1.3");
  put("encryption_cipher=", "TLS_AES_256_GCM_SHA384");
  put("encryption_keysize=", "256");
  put("policy_context=", "recipient");
  text.push_back('\n');
  return text;
}

RequestCorpus::RequestCorpus(const Population& population, std::size_t count, std::uint64_t seed) {
  // 16 interleaved streams, as 16 smtpd processes would send them.
  std::vector<TransactionStream> streams;
  for (std::uint32_t id = 0; id < 16; ++id) streams.emplace_back(population, seed, id);
  for (std::size_t i = 0; i < count; ++i) streams[i % streams.size()].appendNextRequest(text_);

  requests_.resize(count);  // text_ no longer changes: the views below stay valid
  protocol::RequestParser parser;
  std::string_view rest = text_;
  for (auto& request : requests_) {
    const auto outcome = parser.parse(rest, request);
    if (outcome.status != protocol::ParseStatus::Complete) {
      std::fprintf(stderr, "harness: a generated request did not parse\n");
      std::abort();
    }
    rest.remove_prefix(outcome.consumed);
  }
}

MemoryUsage readMemoryUsage() {
  MemoryUsage usage;
  std::ifstream status("/proc/self/status");
  std::string key;
  std::int64_t value = 0;
  while (status >> key) {
    if (key == "VmRSS:" && status >> value) usage.rss_kb = value;
    if (key == "RssAnon:" && status >> value) usage.anon_kb = value;
    if (key == "RssFile:" && status >> value) usage.file_kb = value;
    if (key == "VmHWM:" && status >> value) usage.hwm_kb = value;
  }
  return usage;
}

std::unique_ptr<store::EmbeddedStore> openStore(const std::filesystem::path& dir,
                                                std::int64_t max_accounts) {
  store::EmbeddedStoreOptions options;
  options.dir = dir;
  options.max_accounts = max_accounts;
  auto store = store::EmbeddedStore::open(options);
  if (!store) {
    std::fprintf(stderr, "harness: cannot open the embedded store in %s: %s\n", dir.c_str(),
                 store.error().message.c_str());
    std::abort();
  }
  return std::move(*store);
}

void prefillAccount(store::Store& store, const Account& account, TimePoint now) {
  using std::chrono::hours;
  // Three messages over the day (three hourly buckets), from each of the two home addresses.
  const TimePoint times[] = {now - hours(20), now - hours(9), now - hours(1)};
  for (std::size_t i = 0; i < 3; ++i) {
    auto batch = stateBatch(account.address, account.home_addresses[i % 2].view());
    if (auto result = store.execute(batch, times[i]); !result) {
      std::fprintf(stderr, "harness: prefill failed: %s\n", result.error().message.c_str());
      std::abort();
    }
  }
}

}  // namespace saslguard::bench
