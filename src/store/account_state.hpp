// account_state.hpp — what the embedded store keeps in memory per account (counters, sets, the
// mirrored mark) and its versioned binary record in the LMDB "accounts" database. Counter and
// set names are interned per shard, so an account stores a 16-bit id instead of a string.
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "store/distinct_set.hpp"
#include "store/sliding_window.hpp"
#include "store/store.hpp"

namespace saslguard::store {

// Counter and set names seen in one shard ("quota:86400", "geo:ips"). Names come from the
// configuration, so the table stays tiny; the cap only stops a misuse from growing it forever.
class NameTable {
 public:
  static constexpr std::size_t kMaxNames = 4096;
  std::optional<std::uint16_t> find(std::string_view name) const;
  // nullopt when the table is full.
  std::optional<std::uint16_t> intern(std::string_view name);
  const std::string& name(std::uint16_t id) const { return names_[id]; }

 private:
  std::vector<std::string> names_;
};

struct NamedWindow {
  std::uint16_t name = 0;
  SlidingWindow window;
};

struct NamedSet {
  std::uint16_t name = 0;
  DistinctSet set;
};

// Inline room for one counter and two sets — a quota window plus the geo IP and country sets —
// so a typical account is a single allocation (see AccountEntry); more spill to the heap.
struct AccountState {
  boost::container::small_vector<NamedWindow, 1> counters;
  boost::container::small_vector<NamedSet, 2> sets;
  std::unique_ptr<Mark> mark;  // mirror of the registry record; null when not marked
  std::uint32_t last_active_s = 0;
  std::uint32_t dirty_slot : 31 = 0;  // 1 + position in the shard's dirty list; 0: journaled
  std::uint32_t unsaved : 1 = 0;      // changed since the accounts database last got it

  NamedWindow* findCounter(std::uint16_t name);
  NamedSet* findSet(std::uint16_t name);
  // Drops expired buckets and set entries, then counters and sets left empty.
  void prune(std::int64_t now_s);
  bool hasData() const { return !counters.empty() || !sets.empty(); }
};

// The parts of a mark that change on the hot path (hits, last seen) are written with the
// account record, not the registry record, so the flusher never rewrites a registry entry.
// first_seen identifies which mark they belong to.
struct MarkActivity {
  std::int64_t first_seen_ms = 0;
  std::int64_t last_seen_ms = 0;
  std::uint64_t hits = 0;
};

// Appends the record of `state` to `out`.
void encodeAccount(const AccountState& state, const NameTable& names, std::string& out);

struct DecodedAccount {
  AccountState state;  // mark left null: marks come from the registry database
  std::optional<MarkActivity> mark_activity;
};
Result<DecodedAccount> decodeAccount(std::string_view bytes, NameTable& names);

}  // namespace saslguard::store
