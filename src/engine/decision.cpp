// decision.cpp — see decision.hpp.
#include "engine/decision.hpp"

#include <fmt/format.h>

#include "common/strings.hpp"

namespace saslguard::engine {

std::string formatDecision(const DecisionRecord& r, bool json) {
  const auto ms = toUnixMs(r.at);
  if (json) {
    std::string verdicts;
    for (const auto& v : r.verdicts) {
      if (!verdicts.empty()) verdicts += ',';
      verdicts += fmt::format(R"({{"detector":"{}","action":"{}","reason":"{}","shadow":{}}})",
                              jsonEscape(v.detector), protocol::actionName(v.action),
                              jsonEscape(v.reason), v.shadow);
    }
    return fmt::format(
        R"({{"msg":"decision","account":"{}","stage":"{}","client_address":"{}","instance":"{}",)"
        R"("outcome":"{}","action":"{}","decided_by":"{}","new_mark":{},"duration_us":{},)"
        R"("at_ms":{},"verdicts":[{}]}})",
        jsonEscape(r.account), protocol::stageName(r.stage), jsonEscape(r.client_address),
        jsonEscape(r.instance), r.outcome, protocol::actionName(r.action), jsonEscape(r.decided_by),
        r.new_mark, r.duration_us, ms, verdicts);
  }
  std::string verdicts;
  for (const auto& v : r.verdicts) {
    if (!verdicts.empty()) verdicts += ',';
    verdicts += v.detector + ":" + std::string(protocol::actionName(v.action)) +
                (v.shadow ? "(shadow)" : "");
  }
  std::string reason;
  for (const auto& v : r.verdicts) {
    if (!v.shadow && v.detector == r.decided_by) reason = v.reason;
  }
  return fmt::format(
      "decision account={} stage={} client={} instance={} action={} by={}{}{}{} us={}",
      quoteForLog(r.account), protocol::stageName(r.stage), quoteForLog(r.client_address),
      quoteForLog(r.instance), protocol::actionName(r.action),
      r.decided_by.empty() ? "-" : r.decided_by,
      reason.empty() ? "" : " reason=" + quoteForLog(reason),
      verdicts.empty() ? "" : " verdicts=" + verdicts, r.new_mark ? " mark=new" : "",
      r.duration_us);
}

RecentDecisions::RecentDecisions(std::size_t capacity)
    : per_shard_(std::max<std::size_t>(1, capacity / kShards)) {}

// A ring, not a deque: the deque allocated and freed a node every other decision, and add() with
// the malloc/free around it was the largest engine cost in perf on the daemon.
void RecentDecisions::add(DecisionRecord record) {
  auto shard = shards_.shardFor(record.account).lock();
  auto& ring = *shard;
  if (ring.records.size() < per_shard_) {
    ring.records.push_back(std::move(record));
    return;
  }
  ring.records[ring.oldest] = std::move(record);
  ring.oldest = (ring.oldest + 1) % per_shard_;
}

std::vector<DecisionRecord> RecentDecisions::forAccount(const std::string& account,
                                                        std::size_t limit) {
  std::vector<DecisionRecord> found;
  auto shard = shards_.shardFor(account).lock();
  const auto& ring = *shard;
  const std::size_t n = ring.records.size();
  for (std::size_t age = 0; age < n && found.size() < limit; ++age) {  // newest first
    const auto& record = ring.records[(ring.oldest + n - 1 - age) % n];
    if (record.account == account) found.push_back(record);
  }
  return found;
}

std::size_t RecentDecisions::size() {
  std::size_t total = 0;
  for (std::size_t i = 0; i < kShards; ++i) total += shards_.shard(i).lock()->records.size();
  return total;
}

}  // namespace saslguard::engine
