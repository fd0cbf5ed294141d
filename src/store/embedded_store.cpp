// embedded_store.cpp — the request path, memory bounds and the registry of EmbeddedStore
// (persistence is in embedded_store_persistence.cpp). Lock order, outermost first: flush_mutex_,
// registry_mutex_, the LMDB write lock, a shard lock, expiring_. Nobody waits for LMDB while
// holding a shard lock, so the request path (one shard lock, no I/O) never waits for the disk.
#include "store/embedded_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <system_error>

#include "store/codec.hpp"
#include "store/time_units.hpp"

namespace saslguard::store {
namespace {

constexpr std::size_t kEvictionSample = 8;          // accounts compared per inline eviction
constexpr std::size_t kEvictionSlotsScanned = 256;  // at most, looking for them
constexpr std::size_t kSweepSlotsPerFlush = 2048;   // per shard and flush interval
constexpr std::size_t kViewAuditEntries = 200;      // newest audit entries view() returns

// The later of two expiries, where none means "until cleared".
std::optional<TimePoint> longerExpiry(const std::optional<TimePoint>& a,
                                      const std::optional<TimePoint>& b) {
  if (!a || !b) return std::nullopt;
  return std::max(*a, *b);
}

Result<void> checkAccount(const std::string& account) {
  if (account.empty()) return fail("empty account name");
  if (account.size() > EmbeddedStore::kMaxAccountBytes) {
    return fail("account name longer than " + std::to_string(EmbeddedStore::kMaxAccountBytes) +
                " bytes");
  }
  if (std::memchr(account.data(), '\0', account.size()) != nullptr) {
    return fail("account name contains a NUL byte");
  }
  return {};
}

bool batchChangesState(const Batch& batch) {
  for (const auto& op : batch.counters) {
    if (op.amount > 0) return true;
  }
  for (const auto& op : batch.sets) {
    if (!op.value.empty()) return true;
  }
  return false;
}

std::uint64_t nextRandom(std::uint64_t& state) {  // xorshift64
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

}  // namespace

// ---- time ---------------------------------------------------------------------------------------

std::int64_t EmbeddedStore::wallClockMs() const {
  return toUnixMs(options_.clock());
}

void EmbeddedStore::noteNow(std::int64_t now_ms) {
  // Written at most once a second so request threads do not share a hot cache line.
  std::int64_t seen = observed_ms_.load(std::memory_order_relaxed);
  while (now_ms >= seen + 1000 || (seen == 0 && now_ms != 0)) {
    if (observed_ms_.compare_exchange_weak(seen, now_ms, std::memory_order_relaxed)) break;
  }
}

std::int64_t EmbeddedStore::backgroundNowMs() const {
  const std::int64_t seen = observed_ms_.load(std::memory_order_relaxed);
  return seen != 0 ? seen : wallClockMs();
}

// ---- the request path -------------------------------------------------------------------------

Result<BatchResult> EmbeddedStore::execute(const Batch& batch, TimePoint now) {
  if (closed_.load(std::memory_order_relaxed)) return fail("state store is closed");
  if (auto ok = checkAccount(batch.account); !ok) return tl::unexpected(ok.error());
  const std::int64_t now_ms = toUnixMs(now);
  const std::int64_t now_s = floorSeconds(now_ms);
  noteNow(now_ms);

  BatchResult result;
  const std::uint64_t hash = accountHash(batch.account);
  auto shard = shardOf(hash).lock();
  AccountEntry* entry = shard->accounts.find(batch.account, hash);
  if (entry != nullptr) {
    Mark* mark = entry->state.mark.get();
    if (batch.check_registry && mark != nullptr && isLive(*mark, now)) {
      ++mark->hits;
      mark->last_seen = std::max(mark->last_seen, now);
      markDirty(*shard, *entry);
      result.mark = *mark;
      return result;
    }
  } else {
    if (!batchChangesState(batch)) {  // reads of an unknown account: all zero, nothing stored
      result.counters.resize(batch.counters.size());
      result.sets.resize(batch.sets.size());
      return result;
    }
    entry = shard->accounts.insert(batch.account, hash).first;
    if (accounts_.fetch_add(1, std::memory_order_relaxed) + 1 > options_.max_accounts) {
      evictForInsert(*shard, entry);
    }
  }

  AccountState& state = entry->state;
  state.last_active_s = std::max(state.last_active_s, toUnixSeconds32(now_s));
  bool changed = false;

  // Groups of counters added all or none: a group is blocked when one of its ops would reach
  // its limit (bit g set for group g; groups above 63 are not supported and never blocked).
  std::uint64_t blocked_groups = 0;
  for (const auto& op : batch.counters) {
    if (op.all_or_none_group == 0 || op.all_or_none_group > 63 || !op.add_only_below) continue;
    const auto name = shard->names.find(op.name);
    const NamedWindow* counter = name ? state.findCounter(*name) : nullptr;
    const std::uint64_t total = (counter ? counter->window.total(now_s) : 0) + op.amount;
    if (total >= *op.add_only_below) blocked_groups |= std::uint64_t{1} << op.all_or_none_group;
  }

  result.counters.reserve(batch.counters.size());
  for (const auto& op : batch.counters) {
    auto name = op.amount > 0 ? shard->names.intern(op.name) : shard->names.find(op.name);
    NamedWindow* counter = name ? state.findCounter(*name) : nullptr;
    if (counter == nullptr && op.amount > 0) {
      if (!name) return fail("too many distinct counter and set names in the state store");
      counter =
          &state.counters.emplace_back(NamedWindow{*name, SlidingWindow(op.window_s, op.buckets)});
    }
    if (counter == nullptr) {
      result.counters.push_back(CounterResult{});
      continue;
    }
    if (!counter->window.hasShape(op.window_s, op.buckets)) {
      counter->window.reshape(op.window_s, op.buckets);
      changed = true;
    }
    const bool blocked = op.all_or_none_group != 0 && op.all_or_none_group <= 63 &&
                         (blocked_groups & (std::uint64_t{1} << op.all_or_none_group)) != 0;
    result.counters.push_back(counter->window.apply(
        op.amount, blocked ? std::optional<std::uint64_t>(0) : op.add_only_below, now_s));
    changed |= result.counters.back().added;
  }

  result.sets.reserve(batch.sets.size());
  for (const auto& op : batch.sets) {
    const bool touches = !op.value.empty();
    auto name = touches ? shard->names.intern(op.name) : shard->names.find(op.name);
    NamedSet* set = name ? state.findSet(*name) : nullptr;
    if (set == nullptr && touches) {
      if (!name) return fail("too many distinct counter and set names in the state store");
      set = &state.sets.emplace_back(NamedSet{*name, DistinctSet{}});
    }
    if (set == nullptr) {
      result.sets.push_back(SetResult{});
      continue;
    }
    result.sets.push_back(set->set.touch(op.value, op.ttl_s, now_s, options_.max_set_entries));
    changed |= touches;
  }

  if (changed) markDirty(*shard, *entry);
  return result;
}

void EmbeddedStore::markDirty(Shard& shard, AccountEntry& entry) {
  entry.state.unsaved = 1;
  if (entry.state.dirty_slot != 0) return;
  shard.dirty.push_back(&entry);
  entry.state.dirty_slot = static_cast<std::uint32_t>(shard.dirty.size());
}

// Drops an account from memory; the next flush journals the deletion and the next checkpoint
// deletes its record.
void EmbeddedStore::forget(Shard& shard, AccountEntry* entry, std::uint64_t hash) {
  if (const std::uint32_t slot = entry->state.dirty_slot; slot != 0) {
    AccountEntry* last = shard.dirty.back();
    shard.dirty[slot - 1] = last;
    last->state.dirty_slot = slot;
    shard.dirty.pop_back();
  }
  shard.deleted.emplace_back(entry->key());
  shard.unsaved_deleted.emplace_back(entry->key());
  shard.accounts.erase(entry, hash);
  accounts_.fetch_sub(1, std::memory_order_relaxed);
}

// Approximate LRU: of a few accounts sampled from this shard, forget the least recently active
// unmarked one. When the shard has none to offer, the flusher's enforceCap() catches up.
void EmbeddedStore::evictForInsert(Shard& shard, const AccountEntry* keep) {
  const AccountTable& table = shard.accounts;
  const std::size_t slots = table.slotCount();
  std::size_t slot = nextRandom(shard.random) % slots;
  std::size_t victim = slots;
  std::size_t sampled = 0;
  const std::size_t look_at = std::min(slots, kEvictionSlotsScanned);
  for (std::size_t visited = 0; visited < look_at && sampled < kEvictionSample; ++visited) {
    const AccountEntry* entry = table.entryAt(slot);
    if (entry != nullptr && entry != keep && !entry->state.mark) {
      ++sampled;
      if (victim == slots ||
          entry->state.last_active_s < table.entryAt(victim)->state.last_active_s) {
        victim = slot;
      }
    }
    slot = (slot + 1) % slots;
  }
  if (victim == slots) return;
  forget(shard, table.entryAt(victim), table.hashAt(victim));
  evicted_.fetch_add(1, std::memory_order_relaxed);
}

// ---- memory bounds -----------------------------------------------------------------------------

// Idle expiry, a slice of the shard at a time: over successive flushes every account is seen.
void EmbeddedStore::sweepSlice(Shard& shard, std::int64_t now_s) {
  AccountTable& table = shard.accounts;
  if (table.empty()) return;
  const std::size_t slots = table.slotCount();
  const std::size_t count = std::min(slots, kSweepSlotsPerFlush);
  std::vector<std::size_t> idle;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t slot = (shard.sweep_slot + i) % slots;
    AccountEntry* entry = table.entryAt(slot);
    if (entry == nullptr || entry->state.mark) continue;
    AccountState& state = entry->state;
    if (now_s - std::int64_t{state.last_active_s} < options_.idle_expiry_s) {
      state.prune(now_s);
      if (state.hasData()) continue;
    }
    idle.push_back(slot);
  }
  shard.sweep_slot = (shard.sweep_slot + count) % slots;
  forgetAll(shard, idle);
}

// Forgets the entries in these slots (erasing shifts entries between slots, so the entries and
// hashes are read first).
void EmbeddedStore::forgetAll(Shard& shard, const std::vector<std::size_t>& slots) {
  std::vector<std::pair<AccountEntry*, std::uint64_t>> entries;
  entries.reserve(slots.size());
  for (std::size_t slot : slots) {
    entries.emplace_back(shard.accounts.entryAt(slot), shard.accounts.hashAt(slot));
  }
  for (auto [entry, hash] : entries) forget(shard, entry, hash);
}

// Exact cap enforcement, for when sampling at insert time could not keep up (tiny shards, many
// marks, or a load of more accounts than the cap): forget the least recently active unmarked
// accounts until the count is back at max_accounts.
void EmbeddedStore::enforceCap() {
  const std::int64_t excess = accounts_.load() - options_.max_accounts;
  if (excess <= 0) return;
  std::vector<std::uint32_t> activity;
  for (std::size_t i = 0; i < shards_.kShards; ++i) {
    shards_.shard(i).lock()->accounts.forEach([&](const AccountEntry& entry) {
      if (!entry.state.mark) activity.push_back(entry.state.last_active_s);
    });
  }
  if (activity.empty()) return;
  const std::size_t evict =
      std::min<std::size_t>(static_cast<std::size_t>(excess), activity.size());
  std::nth_element(activity.begin(), activity.begin() + (evict - 1), activity.end());
  const std::uint32_t cutoff = activity[evict - 1];
  std::size_t remaining = evict;
  // Strictly older than the cutoff first (fewer than `evict` of them), then ties.
  std::vector<std::size_t> victims;
  for (bool ties : {false, true}) {
    for (std::size_t i = 0; i < shards_.kShards && remaining > 0; ++i) {
      auto shard = shards_.shard(i).lock();
      const AccountTable& table = shard->accounts;
      victims.clear();
      for (std::size_t slot = 0; slot < table.slotCount() && victims.size() < remaining; ++slot) {
        const AccountEntry* entry = table.entryAt(slot);
        if (entry == nullptr || entry->state.mark) continue;
        const std::uint32_t active = entry->state.last_active_s;
        if (ties ? active == cutoff : active < cutoff) victims.push_back(slot);
      }
      forgetAll(*shard, victims);
      remaining -= victims.size();
      evicted_.fetch_add(victims.size(), std::memory_order_relaxed);
    }
  }
}

// ---- the registry -----------------------------------------------------------------------------

Result<void> EmbeddedStore::appendAudit(lmdb::Txn& txn, const AuditEntry& entry) {
  const std::string value = codec::encodeAudit(entry);
  for (std::uint32_t seq = 0;; ++seq) {
    auto put =
        txn.putNew(audit_db_, codec::auditKey(entry.account, toUnixMs(entry.at), seq), value);
    if (!put) return tl::unexpected(put.error());
    if (*put) return {};
  }
}

// Copies a committed mark into memory (creating the account if needed).
void EmbeddedStore::mirrorMark(const std::string& account, const Mark& mark, std::int64_t now_s) {
  {
    const std::uint64_t hash = accountHash(account);
    auto shard = shardOf(hash).lock();
    auto [entry, inserted] = shard->accounts.insert(account, hash);
    if (inserted) accounts_.fetch_add(1, std::memory_order_relaxed);
    AccountState& state = entry->state;
    state.last_active_s = std::max(state.last_active_s, toUnixSeconds32(now_s));
    if (state.mark) {
      *state.mark = mark;
    } else {
      state.mark = std::make_unique<Mark>(mark);
      marks_.fetch_add(1, std::memory_order_relaxed);
    }
    markDirty(*shard, *entry);  // the record's mark activity must follow the new first_seen
  }
  auto expiring = expiring_.lock();
  if (mark.expires) {
    expiring->insert_or_assign(account, toUnixMs(*mark.expires));
  } else if (auto it = expiring->find(account); it != expiring->end()) {
    expiring->erase(it);
  }
}

// Removes the memory copy of a mark; with `expired_at`, only when it is not live then (a mark
// placed again meanwhile stays).
void EmbeddedStore::forgetMark(std::string_view account, std::optional<TimePoint> expired_at) {
  const std::uint64_t hash = accountHash(account);
  auto shard = shardOf(hash).lock();
  AccountEntry* entry = shard->accounts.find(account, hash);
  if (entry == nullptr || !entry->state.mark) return;
  if (expired_at && isLive(*entry->state.mark, *expired_at)) return;
  entry->state.mark.reset();
  marks_.fetch_sub(1, std::memory_order_relaxed);
  markDirty(*shard, *entry);
}

Result<MarkOutcome> EmbeddedStore::mark(const std::string& account, const Mark& mark,
                                        TimePoint now) {
  if (closed_.load()) return fail("state store is closed");
  if (auto ok = checkAccount(account); !ok) return tl::unexpected(ok.error());
  noteNow(toUnixMs(now));

  std::lock_guard registry_lock(registry_mutex_);
  auto txn = lmdb::Txn::beginWrite(env_);
  if (!txn) return tl::unexpected(txn.error());
  auto stored = txn->get(registry_db_, account);
  if (!stored) return tl::unexpected(stored.error());
  std::optional<Mark> existing;
  if (*stored) {
    existing = codec::decodeMark(**stored);
    if (!existing) spdlog::error("state: unreadable registry record for {:?}; replaced", account);
  }

  MarkOutcome outcome;
  if (existing && isLive(*existing, now)) {
    outcome.is_new = false;
    outcome.mark = std::move(*existing);
    {  // the hot path counted hits in memory since the last commit
      const std::uint64_t hash = accountHash(account);
      auto shard = shardOf(hash).lock();
      const AccountEntry* entry = shard->accounts.find(account, hash);
      if (entry != nullptr && entry->state.mark &&
          entry->state.mark->first_seen == outcome.mark.first_seen) {
        outcome.mark.hits = std::max(outcome.mark.hits, entry->state.mark->hits);
        outcome.mark.last_seen = std::max(outcome.mark.last_seen, entry->state.mark->last_seen);
      }
    }
    ++outcome.mark.hits;
    outcome.mark.last_seen = std::max(outcome.mark.last_seen, now);
    outcome.mark.expires = longerExpiry(outcome.mark.expires, mark.expires);
  } else {
    if (existing) {
      auto ok = appendAudit(*txn, AuditEntry{now, account, "expire", existing->detector,
                                             "mark expired", existing->evidence});
      if (!ok) return tl::unexpected(ok.error());
    }
    outcome.is_new = true;
    outcome.mark = mark;
    if (outcome.mark.first_seen == TimePoint{}) outcome.mark.first_seen = now;
    if (outcome.mark.last_seen == TimePoint{}) outcome.mark.last_seen = now;
  }
  if (auto ok = txn->put(registry_db_, account, codec::encodeMark(outcome.mark)); !ok) {
    return tl::unexpected(ok.error());
  }
  auto audited = appendAudit(
      *txn, AuditEntry{now, account, "mark", mark.detector, mark.reason, mark.evidence});
  if (!audited) return tl::unexpected(audited.error());
  if (auto ok = txn->commit(); !ok) return tl::unexpected(ok.error());

  mirrorMark(account, outcome.mark, floorSeconds(toUnixMs(now)));
  return outcome;
}

Result<bool> EmbeddedStore::clear(const std::string& account, const ClearInfo& info,
                                  TimePoint now) {
  if (closed_.load()) return fail("state store is closed");
  if (auto ok = checkAccount(account); !ok) return tl::unexpected(ok.error());
  noteNow(toUnixMs(now));

  std::lock_guard registry_lock(registry_mutex_);
  auto txn = lmdb::Txn::beginWrite(env_);
  if (!txn) return tl::unexpected(txn.error());
  auto stored = txn->get(registry_db_, account);
  if (!stored) return tl::unexpected(stored.error());
  if (!*stored) {
    txn->abort();
    forgetMark(account, std::nullopt);  // a stale mirror (another process cleared it)
    return false;
  }
  std::optional<Mark> existing = codec::decodeMark(**stored);
  const bool live = existing && isLive(*existing, now);
  if (auto ok = txn->del(registry_db_, account); !ok) return tl::unexpected(ok.error());
  AuditEntry entry = live ? AuditEntry{now, account, "clear", info.by, info.reason, ""}
                          : AuditEntry{now,
                                       account,
                                       "expire",
                                       existing ? existing->detector : "",
                                       "mark expired",
                                       existing ? existing->evidence : ""};
  if (auto ok = appendAudit(*txn, entry); !ok) return tl::unexpected(ok.error());
  if (auto ok = txn->commit(); !ok) return tl::unexpected(ok.error());

  forgetMark(account, std::nullopt);
  auto expiring = expiring_.lock();
  if (auto it = expiring->find(account); it != expiring->end()) expiring->erase(it);
  return live;
}

Result<std::optional<Mark>> EmbeddedStore::getMark(const std::string& account, TimePoint now) {
  if (closed_.load(std::memory_order_relaxed)) return fail("state store is closed");
  const std::uint64_t hash = accountHash(account);
  auto shard = shardOf(hash).lock();
  const AccountEntry* entry = shard->accounts.find(account, hash);
  if (entry == nullptr || !entry->state.mark || !isLive(*entry->state.mark, now)) {
    return std::optional<Mark>();
  }
  return std::optional<Mark>(*entry->state.mark);
}

Result<std::vector<std::pair<std::string, Mark>>> EmbeddedStore::listMarks(const std::string& after,
                                                                           std::size_t limit,
                                                                           TimePoint now) {
  if (closed_.load()) return fail("state store is closed");
  std::vector<std::pair<std::string, Mark>> marks;
  auto txn = lmdb::Txn::beginRead(env_);
  if (!txn) return tl::unexpected(txn.error());
  auto cursor = lmdb::Cursor::open(*txn, registry_db_);
  if (!cursor) return tl::unexpected(cursor.error());
  for (auto entry = cursor->seek(after); marks.size() < limit; entry = cursor->next()) {
    if (!entry) return tl::unexpected(entry.error());
    if (!*entry) break;
    auto [key, value] = **entry;
    if (!after.empty() && key == after) continue;
    auto mark = codec::decodeMark(value);
    if (!mark || !isLive(*mark, now)) continue;
    marks.emplace_back(std::string(key), std::move(*mark));
  }
  txn->abort();
  for (auto& [account, mark] : marks) {  // hits and last_seen move on in memory between flushes
    const std::uint64_t hash = accountHash(account);
    auto shard = shardOf(hash).lock();
    const AccountEntry* entry = shard->accounts.find(account, hash);
    if (entry == nullptr || !entry->state.mark) continue;
    if (entry->state.mark->first_seen != mark.first_seen) continue;
    mark.hits = std::max(mark.hits, entry->state.mark->hits);
    mark.last_seen = std::max(mark.last_seen, entry->state.mark->last_seen);
  }
  return marks;
}

Result<std::size_t> EmbeddedStore::forgetSets(const std::string& account,
                                              std::string_view name_prefix, TimePoint now) {
  if (closed_.load()) return fail("state store is closed");
  if (auto ok = checkAccount(account); !ok) return tl::unexpected(ok.error());
  noteNow(toUnixMs(now));
  std::size_t dropped = 0;
  {
    const std::uint64_t hash = accountHash(account);
    auto shard = shardOf(hash).lock();
    AccountEntry* entry = shard->accounts.find(account, hash);
    if (entry == nullptr) return std::size_t{0};
    auto& sets = entry->state.sets;
    for (auto it = sets.begin(); it != sets.end();) {
      if (shard->names.name(it->name).starts_with(name_prefix)) {
        it = sets.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    if (dropped == 0) return std::size_t{0};
    markDirty(*shard, *entry);
  }
  // An operator's change is durable before the answer, like a mark or a clear.
  if (auto flushed = flush(); !flushed) return tl::unexpected(flushed.error());
  return dropped;
}

Result<AccountView> EmbeddedStore::view(const std::string& account, TimePoint now) {
  if (closed_.load()) return fail("state store is closed");
  const std::int64_t now_s = floorSeconds(toUnixMs(now));
  AccountView view;
  view.account = account;
  {
    const std::uint64_t hash = accountHash(account);
    auto shard = shardOf(hash).lock();
    if (const AccountEntry* entry = shard->accounts.find(account, hash)) {
      const AccountState& state = entry->state;
      if (state.mark && isLive(*state.mark, now)) view.mark = *state.mark;
      for (const auto& counter : state.counters) {
        view.counters.push_back(AccountView::Counter{shard->names.name(counter.name),
                                                     counter.window.windowSeconds(),
                                                     counter.window.total(now_s)});
      }
      for (const auto& set : state.sets) {
        AccountView::Set out{shard->names.name(set.name), {}};
        for (const auto& member : set.set.members()) {
          if (!set.set.isLive(member, now_s)) continue;
          out.entries.push_back(
              SetEntry{member.value.text(), fromUnixMs(std::int64_t{member.last_seen_s} * 1000)});
        }
        view.sets.push_back(std::move(out));
      }
    }
  }
  auto txn = lmdb::Txn::beginRead(env_);
  if (!txn) return tl::unexpected(txn.error());
  auto cursor = lmdb::Cursor::open(*txn, audit_db_);
  if (!cursor) return tl::unexpected(cursor.error());
  // The newest entries, read backwards from the end of the account's key range (keys sort by
  // time): an account with a long history costs no more than one with kViewAuditEntries.
  const std::string prefix = codec::auditPrefix(account);
  std::string past_prefix = prefix;
  past_prefix.back() = '\x01';  // the account's keys are "<account>\0<time><seq>"
  auto entry = cursor->seek(past_prefix);
  if (entry) entry = *entry ? cursor->prev() : cursor->last();
  for (; view.audit.size() < kViewAuditEntries; entry = cursor->prev()) {
    if (!entry) return tl::unexpected(entry.error());
    if (!*entry || !(*entry)->first.starts_with(prefix)) break;
    if (auto audit = codec::decodeAudit((*entry)->second)) view.audit.push_back(std::move(*audit));
  }
  std::reverse(view.audit.begin(), view.audit.end());  // oldest first, as before
  return view;
}

StoreStats EmbeddedStore::stats() {
  StoreStats stats;
  stats.accounts = static_cast<std::uint64_t>(std::max<std::int64_t>(0, accounts_.load()));
  stats.marks = static_cast<std::uint64_t>(std::max<std::int64_t>(0, marks_.load()));
  stats.evicted = evicted_.load();
  stats.flushes = flushes_.load();
  stats.flush_errors = flush_errors_.load();
  return stats;
}

}  // namespace saslguard::store
