// quota.cpp — see quota.hpp. Counts recipients per account over sliding windows and answers
// HOLD past the quota and REJECT past hold_factor x quota. A message the detector rejects is not
// added (Store add_only_below), so a rejected burst does not keep the account locked out.
#include "engine/detectors/quota.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#include "common/strings.hpp"

namespace saslguard::engine {
namespace {

using protocol::Attr;
using protocol::Stage;

Result<std::uint64_t> parseCount(std::string_view text) {
  text = trim(text);
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || stop != end) return fail("not a number");
  return value;
}

// Quotas stay below 10^9, so quota x quota and quota x hold factor (in thousandths, at most
// 10^9) cannot overflow 64 bits.
constexpr std::uint64_t kMaxQuota = 999'999'999;

std::uint64_t ceilDiv(std::uint64_t a, std::uint64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

std::string durationText(std::uint32_t seconds) {
  if (seconds % 86400 == 0 && seconds > 86400) return std::to_string(seconds / 86400) + "d";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

}  // namespace

Result<QuotaDetector::Window> parseQuotaWindow(std::string_view text) {
  const auto bad = [&] {
    return fail("expected DURATION:QUOTA such as 24h:1500 (DURATION in s, m, h or d), got '" +
                std::string(text) + "'");
  };
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return bad();
  auto duration = trim(text.substr(0, colon));
  if (duration.size() < 2) return bad();
  std::uint64_t unit = 0;
  switch (duration.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return bad();
  }
  auto amount = parseCount(duration.substr(0, duration.size() - 1));
  auto quota = parseCount(text.substr(colon + 1));
  if (!amount || !quota || *amount == 0 || *quota == 0 || *amount > 366 * 86400) return bad();
  if (*quota > kMaxQuota) return fail("quota " + std::to_string(*quota) + " above 999999999");
  if (*amount * unit < 60 || *amount * unit > 366 * 86400) {
    return fail("window '" + std::string(duration) + "' must be from 1m to 366d");
  }
  QuotaDetector::Window window;
  window.window_s = static_cast<std::uint32_t>(*amount * unit);
  window.quota = *quota;
  window.counter = "quota:" + std::to_string(window.window_s);
  return window;
}

Result<std::pair<std::string, std::uint64_t>> parseQuotaOverride(std::string_view text,
                                                                 char separator) {
  const auto at = separator == ' ' ? text.find_first_of(" \t") : text.rfind(separator);
  const auto expected = separator == ' ' ? std::string("account-or-@domain QUOTA")
                                         : std::string("account:QUOTA or @domain:QUOTA");
  if (at == std::string_view::npos) {
    return fail("expected " + expected + ", got '" + std::string(trim(text)) + "'");
  }
  auto key = toLowerAscii(trim(text.substr(0, at)));
  auto quota = parseCount(text.substr(at + 1));
  if (key.empty() || key == "@" || !quota || *quota == 0 || *quota > kMaxQuota) {
    return fail("expected " + expected + " (QUOTA from 1 to 999999999), got '" +
                std::string(trim(text)) + "'");
  }
  return std::pair{std::move(key), *quota};
}

Result<std::uint64_t> parseHoldFactor(std::string_view text) {
  text = trim(text);
  const auto dot = text.find('.');
  auto whole = parseCount(text.substr(0, dot));
  std::uint64_t milli = 0;
  if (whole && dot != std::string_view::npos) {
    const auto fraction = text.substr(dot + 1);
    if (fraction.empty() || fraction.size() > 3 || !parseCount(fraction)) {
      whole = fail("bad fraction");
    } else {
      milli = *parseCount(fraction);
      for (auto n = fraction.size(); n < 3; ++n) milli *= 10;
    }
  }
  if (!whole || *whole > 1000000 || *whole * 1000 + milli < 1000) {
    return fail("expected a number of at least 1 such as 2 or 1.5, got '" + std::string(text) +
                "'");
  }
  return *whole * 1000 + milli;
}

Result<DetectorPtr> QuotaDetector::create(const config::QuotaSettings& settings) {
  std::unique_ptr<QuotaDetector> detector(new QuotaDetector());
  const auto error = [](const std::string& option, const std::string& message) {
    return fail("detectors.quota." + option + ": " + message);
  };
  for (const auto& text : settings.windows) {
    auto window = parseQuotaWindow(text);
    if (!window) return error("windows", window.error().message);
    for (const auto& other : detector->windows_) {
      if (other.window_s == window->window_s) return error("windows", "window given twice");
    }
    detector->windows_.push_back(std::move(*window));
  }
  if (detector->windows_.empty()) return error("windows", "at least one window is needed");
  for (std::size_t i = 1; i < detector->windows_.size(); ++i) {
    if (detector->windows_[i].window_s > detector->windows_[detector->longest_].window_s) {
      detector->longest_ = i;
    }
  }
  auto factor = parseHoldFactor(settings.hold_factor);
  if (!factor) return error("hold_factor", factor.error().message);
  detector->hold_factor_milli_ = *factor;
  if (settings.count_at != "end-of-message" && settings.count_at != "rcpt") {
    return error("count_at", "expected end-of-message or rcpt");
  }
  detector->count_at_rcpt_ = settings.count_at == "rcpt";
  detector->shadow_ = settings.shadow;

  auto action = protocol::parseAction(settings.action);
  if (!action) return error("action", "unknown action '" + settings.action + "'");
  detector->action_ = *action;
  detector->reject_text_ = settings.reply_text;
  detector->hold_text_ = settings.hold_text;
  auto blacklist_action = protocol::parseAction(settings.blacklist_action);
  if (!blacklist_action) {
    return error("blacklist_action", "unknown action '" + settings.blacklist_action + "'");
  }
  detector->blacklist_action_ = *blacklist_action;
  detector->blacklist_text_ = settings.blacklist_text;
  if (settings.mark_on == "hold") {
    detector->mark_from_ = Action::Hold;
  } else if (settings.mark_on == "reject") {
    detector->mark_from_ = Action::Reject;
  } else if (settings.mark_on != "none") {
    return error("mark_on", "expected none, hold or reject");
  }
  detector->log_counts_ = settings.log_counts;

  for (const auto& text : settings.accounts) {
    auto entry = parseQuotaOverride(text, ':');
    if (!entry) return error("accounts", entry.error().message);
    detector->account_quotas_[entry->first] = entry->second;
  }
  if (!settings.overrides_file.empty()) {
    std::ifstream in(settings.overrides_file);
    if (!in) return error("overrides_file", "cannot read " + settings.overrides_file);
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
      std::string_view text = line;
      text = trim(text.substr(0, text.find('#')));
      if (text.empty()) continue;
      auto entry = parseQuotaOverride(text, ' ');
      if (!entry) {
        return error("overrides_file", settings.overrides_file + ":" + std::to_string(number) +
                                           ": " + entry.error().message);
      }
      detector->account_quotas_[entry->first] = entry->second;
    }
  }

  const auto buildLists = [&](Lists& lists, const std::vector<std::string>& accounts,
                              const std::vector<std::string>& senders,
                              const std::vector<std::string>& networks,
                              const std::string& prefix) -> Result<void> {
    for (const auto& a : accounts) lists.accounts.insert(toLowerAscii(trim(a)));
    for (const auto& s : senders) lists.senders.insert(toLowerAscii(trim(s)));
    auto parsed = NetworkList::parse(networks);
    if (!parsed) return error(prefix + "_networks", parsed.error().message);
    lists.networks = std::move(*parsed);
    return {};
  };
  if (auto ok = buildLists(detector->whitelist_, settings.whitelist_accounts,
                           settings.whitelist_senders, settings.whitelist_networks, "whitelist");
      !ok) {
    return tl::unexpected(ok.error());
  }
  if (auto ok = buildLists(detector->blacklist_, settings.blacklist_accounts,
                           settings.blacklist_senders, settings.blacklist_networks, "blacklist");
      !ok) {
    return tl::unexpected(ok.error());
  }
  auto hours = OfficeHours::parse(settings.office_hours);
  if (!hours) return error("office_hours", hours.error().message);
  detector->office_hours_ = std::move(*hours);
  auto zone = TimeZone::load(settings.time_zone);
  if (!zone) return error("time_zone", zone.error().message);
  detector->zone_ = std::move(*zone);
  return DetectorPtr(std::move(detector));
}

std::string_view QuotaDetector::match(const Lists& lists, const DetectorContext& context) {
  if (lists.empty()) return {};
  if (lists.accounts.contains(context.identity.account)) return "accounts";
  if (!lists.senders.empty() &&
      lists.senders.contains(toLowerAscii(context.request.get(Attr::sender)))) {
    return "senders";
  }
  if (!lists.networks.empty()) {
    const auto address = parseAddress(context.request.get(Attr::client_address));
    if (address && lists.networks.contains(*address)) return "networks";
  }
  return {};
}

QuotaDetector::Assessment QuotaDetector::assess(const DetectorContext& context, bool log) const {
  Assessment out;
  const auto stage = context.request.stage();
  if (count_at_rcpt_) {
    if (stage != Stage::Rcpt) return out;
    out.recipients = 1;
  } else {
    if (stage != Stage::EndOfMessage && stage != Stage::Data) return out;
    auto count = parseCount(context.request.get(Attr::recipient_count));
    if (!count || *count == 0) {
      if (log) {
        spdlog::debug("quota: account={} stage={} recipient_count={}: nothing to count",
                      quoteForLog(context.identity.account), protocol::stageName(stage),
                      quoteForLog(context.request.get(Attr::recipient_count)));
      }
      return out;
    }
    out.recipients = *count;
  }
  if (auto list = match(blacklist_, context); !list.empty()) {
    out.kind = Assessment::Kind::kBlacklisted;
    out.list = list;
    return out;
  }
  if (auto list = match(whitelist_, context);
      !list.empty() && office_hours_.contains(context.now, zone_)) {
    out.kind = Assessment::Kind::kWhitelisted;
    out.list = list;
    return out;
  }
  out.kind = Assessment::Kind::kCount;
  out.quota = quotaFor(context);
  return out;
}

// Account beats domain beats the default (the first window's quota).
std::uint64_t QuotaDetector::quotaFor(const DetectorContext& context) const {
  if (account_quotas_.empty()) return windows_.front().quota;
  const auto& account = context.identity.account;
  if (auto it = account_quotas_.find(account); it != account_quotas_.end()) return it->second;
  std::string domain;
  if (const auto at = account.rfind('@'); at != std::string::npos) {
    domain = account.substr(at);
  } else {  // identity.strip_domain: the domain of the login
    const auto login = context.request.get(Attr::sasl_username);
    if (const auto at_login = login.rfind('@'); at_login != std::string_view::npos) {
      domain = toLowerAscii(trim(login.substr(at_login)));
    }
  }
  if (!domain.empty()) {
    if (auto it = account_quotas_.find(domain); it != account_quotas_.end()) return it->second;
  }
  return windows_.front().quota;
}

// An account's quota is given for the first window; the others scale with it.
std::uint64_t QuotaDetector::windowQuota(const Window& window, std::uint64_t account_quota) const {
  const auto& first = windows_.front();
  if (account_quota == first.quota) return window.quota;
  return std::max<std::uint64_t>(1, ceilDiv(window.quota * account_quota, first.quota));
}

std::uint64_t QuotaDetector::rejectAt(std::uint64_t quota) const {
  return ceilDiv(quota * hold_factor_milli_, 1000);
}

void QuotaDetector::plan(const DetectorContext& context, store::Batch& batch) const {
  const auto assessment = assess(context, false);
  if (assessment.kind != Assessment::Kind::kCount) return;
  for (const auto& window : windows_) {
    store::CounterOp op;
    op.name = window.counter;
    op.window_s = window.window_s;
    op.buckets = 100;
    op.amount = assessment.recipients;
    // Delivered messages count, rejected ones do not; in shadow mode nothing is rejected.
    if (!shadow_) op.add_only_below = rejectAt(windowQuota(window, assessment.quota));
    op.all_or_none_group = 1;  // rejected by one window: added to none
    batch.counters.push_back(std::move(op));
  }
}

Verdict QuotaDetector::evaluate(const DetectorContext& context,
                                const DetectorResults& results) const {
  const auto assessment = assess(context, true);
  Verdict verdict;
  verdict.detector = name();
  switch (assessment.kind) {
    case Assessment::Kind::kIgnore:
      return verdict;
    case Assessment::Kind::kWhitelisted:
      spdlog::debug("quota: account={} whitelisted ({}) in office hours, not counted",
                    quoteForLog(context.identity.account), assessment.list);
      return verdict;
    case Assessment::Kind::kBlacklisted:
      verdict.action = blacklist_action_;
      verdict.reason = "on the quota blacklist (" + std::string(assessment.list) + ")";
      verdict.evidence = R"({"blacklist":")" + std::string(assessment.list) + R"("})";
      verdict.reply_text = blacklist_text_;
      return verdict;
    case Assessment::Kind::kCount:
      break;
  }
  if (results.counters.size() != windows_.size()) {
    fatal("quota: the store returned " + std::to_string(results.counters.size()) +
          " counters for " + std::to_string(windows_.size()) + " windows");
  }

  // The most severe tier over all windows; on a tie the first window found explains it.
  Action tier = Action::Dunno;
  std::size_t decisive = 0;
  for (std::size_t i = 0; i < windows_.size(); ++i) {
    const auto quota = windowQuota(windows_[i], assessment.quota);
    const auto total = results.counters[i].total;
    const Action here = total >= rejectAt(quota) ? Action::Reject
                        : total >= quota         ? Action::Hold
                                                 : Action::Dunno;
    if (here > tier) {
      tier = here;
      decisive = i;
    }
  }

  const auto& longest = results.counters[longest_];
  const std::uint64_t stored_total =
      longest.added || shadow_ ? longest.total : longest.total - assessment.recipients;
  verdict.counted = CountedMessage{assessment.recipients, stored_total};
  const auto level = log_counts_ ? spdlog::level::info : spdlog::level::debug;
  if (spdlog::should_log(level)) {
    spdlog::log(level, "quota: {}/{}/{}/{}/{}", context.identity.account,
                toLowerAscii(context.request.get(Attr::sender)),
                context.request.get(Attr::client_address), assessment.recipients, longest.total);
  }
  if (tier == Action::Dunno) return verdict;

  const auto& window = windows_[decisive];
  const auto quota = windowQuota(window, assessment.quota);
  const auto total = results.counters[decisive].total;
  const auto period = durationText(window.window_s);
  if (tier == Action::Reject) {
    verdict.action = action_;
    verdict.reply_text = reject_text_;
    verdict.reason = "recipient quota exceeded: " + std::to_string(total) + " recipients in " +
                     period + ", quota " + std::to_string(quota) + ", rejected from " +
                     std::to_string(rejectAt(quota));
  } else {
    verdict.action = Action::Hold;
    verdict.reply_text = hold_text_;
    verdict.reason = "recipient quota exceeded: " + std::to_string(total) + " recipients in " +
                     period + ", quota " + std::to_string(quota);
  }
  verdict.evidence = R"({"window_s":)" + std::to_string(window.window_s) + R"(,"total":)" +
                     std::to_string(total) + R"(,"quota":)" + std::to_string(quota) +
                     R"(,"reject_at":)" + std::to_string(rejectAt(quota)) + R"(,"recipients":)" +
                     std::to_string(assessment.recipients) + "}";
  verdict.mark = mark_from_ != Action::Dunno && tier >= mark_from_;
  return verdict;
}

}  // namespace saslguard::engine
