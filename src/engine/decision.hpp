// decision.hpp — the record of one decision (identity, stage, verdicts, final action, timing):
// logged as one line, and the most recent ones kept in bounded memory for operators and the API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/guarded.hpp"
#include "engine/verdict.hpp"
#include "protocol/request.hpp"

namespace saslguard::engine {

struct VerdictRecord {
  std::string detector;
  Action action = Action::Dunno;
  std::string reason;
  bool shadow = false;  // would have been enforced, but the detector is in shadow mode
};

struct DecisionRecord {
  TimePoint at{};
  std::string account;
  protocol::Stage stage = protocol::Stage::Unknown;
  std::string instance;
  std::string client_address;
  std::string outcome;                  // evaluated | allowlisted | registry | store-error
  std::vector<VerdictRecord> verdicts;  // only verdicts with an opinion
  Action action = Action::Dunno;
  std::string decided_by;  // detector name, "registry", or empty
  bool new_mark = false;
  std::uint32_t duration_us = 0;
};

// "decision account=... action=..." or, for the JSON log, a JSON object.
std::string formatDecision(const DecisionRecord& record, bool json);

// The last `capacity` decisions, spread over shards by account so writers rarely contend.
class RecentDecisions {
 public:
  explicit RecentDecisions(std::size_t capacity);
  void add(DecisionRecord record);
  // Newest first, at most `limit`.
  std::vector<DecisionRecord> forAccount(const std::string& account, std::size_t limit);
  std::size_t size();

 private:
  static constexpr std::size_t kShards = 16;
  // Once full, a shard overwrites its oldest record in place: no allocation per decision.
  struct Ring {
    std::vector<DecisionRecord> records;  // at most per_shard_
    std::size_t oldest = 0;               // where the next record goes once full
  };
  std::size_t per_shard_;
  Sharded<Ring, kShards> shards_;
};

}  // namespace saslguard::engine
