// harness.hpp — what saslguard-micro and saslguard-scale share: the daemon's settings as bench/run
// starts it, requests from the load generator parsed as the daemon parses them, a stand-in for
// the stateful detectors still to land, the embedded store in a temporary directory, and RSS.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "engine/detector.hpp"
#include "load/population.hpp"
#include "protocol/request.hpp"
#include "store/embedded_store.hpp"

namespace saslguard::bench {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDirectory {
 public:
  explicit TempDirectory(const std::string& prefix);
  ~TempDirectory();
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The daemon's defaults with every detector that exists enabled, as bench/run starts it:
// the deny list holds a few accounts and a network that the generated traffic never uses;
// quota keeps its defaults (24 h, 1,500 recipients), which the generated traffic stays under.
config::Settings benchSettings();

// Plans what the geo detector will (a set of client addresses per account, one touch per
// request) and never has an opinion, so its state path is measured before it lands.
class GeoStandInDetector final : public engine::Detector {
 public:
  std::string_view name() const override { return "geo-stand-in"; }
  void plan(const engine::DetectorContext& context, store::Batch& batch) const override;
  engine::Verdict evaluate(const engine::DetectorContext& context,
                           const engine::DetectorResults& results) const override;
};

// The store operations of one counted message, for benchmarks that call the store directly:
// the quota detector's 24 h counter (as QuotaDetector::plan builds it, default settings) and
// the geo stand-in's set.
store::Batch stateBatch(const std::string& account, std::string_view client_address);

// Decision log lines go to a sink that drops them, at the daemon's level (info): formatting a
// line is measured, writing it to a terminal is not.
void discardLogLines();

// One request as Postfix 3.7 smtpd sends it at RCPT TO for an authenticated submission: all 29
// attributes in smtpd's order (src/smtpd/smtpd_check.c), ended by the empty line.
std::string postfix37Request(std::string_view account = "alice@example.org",
                             std::string_view client_address = "198.51.100.23");

// `count` requests from the load generator's TransactionStream, parsed by RequestParser. The
// requests are views into the corpus's own text.
class RequestCorpus {
 public:
  RequestCorpus(const Population& population, std::size_t count, std::uint64_t seed);
  std::size_t size() const { return requests_.size(); }
  const protocol::Request& operator[](std::size_t i) const { return requests_[i]; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<protocol::Request> requests_;
};

struct MemoryUsage {
  std::int64_t rss_kb = 0;   // VmRSS
  std::int64_t anon_kb = 0;  // RssAnon: the heap (LMDB's map pages count under RssFile)
  std::int64_t file_kb = 0;  // RssFile
  std::int64_t hwm_kb = 0;   // VmHWM: peak RSS
};
MemoryUsage readMemoryUsage();  // of this process, from /proc/self/status

// Opens the embedded store as the daemon does (flusher on) in `dir`; aborts on failure.
std::unique_ptr<store::EmbeddedStore> openStore(const std::filesystem::path& dir,
                                                std::int64_t max_accounts = 2'000'000);

// Gives `account` what a day of ordinary mail leaves behind: the quota counter with three
// buckets filled and the geo set holding the account's two home addresses.
void prefillAccount(store::Store& store, const Account& account, TimePoint now);

}  // namespace saslguard::bench
