// quota.hpp — the volume detector (UVSQ policyd semantics): counts an account's recipients over
// one or more sliding windows and answers HOLD from the quota on and the action (REJECT) from
// hold_factor x quota on, counting the current message. Quotas per account or domain, an
// office-hours whitelist and a permanent blacklist. State lives in the Store.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/network.hpp"
#include "engine/detector.hpp"
#include "engine/office_hours.hpp"

namespace saslguard::engine {

class QuotaDetector final : public Detector {
 public:
  // Reads overrides_file and the time zone now: a reload (new pipeline) reads them again.
  static Result<DetectorPtr> create(const config::QuotaSettings& settings);
  std::string_view name() const override { return "quota"; }
  void plan(const DetectorContext& context, store::Batch& batch) const override;
  Verdict evaluate(const DetectorContext& context, const DetectorResults& results) const override;

  struct Window {
    std::uint32_t window_s = 86400;
    std::uint64_t quota = 1500;  // the default account's quota in this window
    std::string counter;         // "quota:86400"
  };

 private:
  QuotaDetector() = default;

  // What this request is to the detector; plan() and evaluate() decide it the same way.
  struct Assessment {
    enum class Kind { kIgnore, kBlacklisted, kWhitelisted, kCount } kind = Kind::kIgnore;
    std::string_view list;         // which blacklist/whitelist matched
    std::uint64_t recipients = 0;  // kCount
    std::uint64_t quota = 0;       // kCount: the account's quota in the first window
  };
  Assessment assess(const DetectorContext& context, bool log) const;  // log: at debug, once
  std::uint64_t quotaFor(const DetectorContext& context) const;
  std::uint64_t windowQuota(const Window& window, std::uint64_t account_quota) const;
  std::uint64_t rejectAt(std::uint64_t quota) const;

  struct Lists {
    std::unordered_set<std::string> accounts;
    std::unordered_set<std::string> senders;
    NetworkList networks;
    bool empty() const { return accounts.empty() && senders.empty() && networks.empty(); }
  };
  static std::string_view match(const Lists& lists, const DetectorContext& context);

  std::vector<Window> windows_;  // the first one is the one quotas are given for
  std::size_t longest_ = 0;      // index of the longest window (the event log's total)
  std::uint64_t hold_factor_milli_ = 2000;
  bool count_at_rcpt_ = false;
  bool shadow_ = false;
  Action action_ = Action::Reject;
  std::string reject_text_;
  std::string hold_text_;
  Action blacklist_action_ = Action::Hold;
  std::string blacklist_text_;
  Action mark_from_ = Action::Dunno;  // Dunno: never mark
  bool log_counts_ = false;
  std::unordered_map<std::string, std::uint64_t> account_quotas_;  // "alice@x" or "@x"
  Lists whitelist_;
  Lists blacklist_;
  OfficeHours office_hours_;
  TimeZone zone_ = TimeZone::utc();
};

// Parsing shared with the tests and import-config: "24h:1500" and "bulk@example.org:10000".
Result<QuotaDetector::Window> parseQuotaWindow(std::string_view text);
Result<std::pair<std::string, std::uint64_t>> parseQuotaOverride(std::string_view text,
                                                                 char separator);
// "2", "1.5" -> thousandths (2000, 1500); at least 1.
Result<std::uint64_t> parseHoldFactor(std::string_view text);

}  // namespace saslguard::engine
