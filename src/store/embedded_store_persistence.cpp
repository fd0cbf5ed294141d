// embedded_store_persistence.cpp — how EmbeddedStore reaches the disk. Every flush interval the
// accounts changed since the last one are appended to a journal database in one group commit
// (keys: flush sequence + account, so appends fill pages in order); every checkpoint_interval_s,
// or once the journal is as large as the account records, the changed accounts are folded into
// the "account-records" database shard by shard and the journal is dropped. Loading reads the
// account records (and the older "accounts" database, once) and replays the journals over them.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <system_error>

#include "store/codec.hpp"
#include "store/embedded_store.hpp"
#include "store/time_units.hpp"

namespace saslguard::store {
namespace {

constexpr auto kSlowFlushWarningEvery = std::chrono::seconds(30);
constexpr std::size_t kRecordsPerTxn = 4096;          // bounds LMDB's dirty pages (and their cache)
constexpr std::uint64_t kCheckpointBytes = 32 << 20;  // journal size that starts a checkpoint
constexpr std::size_t kKeepBatchBytes = 8 << 20;      // buffer capacity kept between flushes

// Account records are keyed by shard (one byte), then account: a checkpoint folds the shards in
// order, so each of its transactions rewrites one contiguous run of pages. Keyed by account
// alone (the "accounts" database up to 0.1), a transaction of 4,096 accounts of a few
// hash-chosen shards touched nearly as many pages scattered over the whole database, and a
// checkpoint with a million accounts rewrote each page several times over.
constexpr char kAccountRecordsDb[] = "account-records";
// Keyed by account: read at load, moved into account-records by the fold, then emptied.
constexpr char kLegacyAccountsDb[] = "accounts";

void setRecordKey(std::string& out, std::size_t shard, std::string_view account) {
  out.assign(1, static_cast<char>(shard));
  out.append(account);
}

std::string_view accountOfRecordKey(std::string_view key) {
  return key.substr(1);
}

// Pages the database occupies, in bytes: what a checkpoint that touches most of its pages writes.
std::uint64_t databaseBytes(lmdb::Env& env, MDB_dbi db) {
  auto txn = lmdb::Txn::beginRead(env);
  if (!txn) return 0;
  MDB_stat stat{};
  if (mdb_stat(txn->get(), db, &stat) != 0) return 0;
  return std::uint64_t{stat.ms_psize} *
         (stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages);
}

using SteadyClock = std::chrono::steady_clock;

void appendBigEndian64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t readBigEndian64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[i]);
  return v;
}

}  // namespace

// ---- record batches ---------------------------------------------------------------------------

void EmbeddedStore::RecordBatch::put(std::string_view key, const AccountState& state,
                                     const NameTable& names) {
  Record record{bytes.size(), key.size(), 0, 0, false};
  bytes.append(key);
  record.value_offset = bytes.size();
  encodeAccount(state, names, bytes);
  record.value_size = bytes.size() - record.value_offset;
  records.push_back(record);
}

void EmbeddedStore::RecordBatch::erase(std::string_view key) {
  records.push_back(Record{bytes.size(), key.size(), bytes.size() + key.size(), 0, true});
  bytes.append(key);
}

void EmbeddedStore::RecordBatch::sortAndDeduplicate() {
  std::sort(records.begin(), records.end(), [this](const Record& a, const Record& b) {
    const int order = key(a).compare(key(b));
    return order != 0 ? order < 0 : (!a.erase && b.erase);  // the write first
  });
  records.erase(std::unique(records.begin(), records.end(),
                            [this](const Record& a, const Record& b) { return key(a) == key(b); }),
                records.end());
}

void EmbeddedStore::RecordBatch::clear() {
  records.clear();
  bytes.clear();
  if (bytes.capacity() > kKeepBatchBytes) std::string().swap(bytes);
  if (records.capacity() > kKeepBatchBytes / sizeof(Record)) std::vector<Record>().swap(records);
}

// ---- opening and closing ------------------------------------------------------------------------

EmbeddedStore::EmbeddedStore(const EmbeddedStoreOptions& options) : options_(options) {
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
  options_.flush_interval_ms = std::max(1, options_.flush_interval_ms);
  options_.max_accounts = std::max<std::int64_t>(1, options_.max_accounts);
  options_.idle_expiry_s = std::max(1, options_.idle_expiry_s);
  options_.checkpoint_interval_s = std::max(0, options_.checkpoint_interval_s);
  last_checkpoint_ = SteadyClock::now();
}

Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::open(const EmbeddedStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return fail("cannot create state directory " + options.dir.string() + ": " + ec.message());
  }
  std::unique_ptr<EmbeddedStore> store(new EmbeddedStore(options));
  if (auto ok = store->lockDirectory(); !ok) return tl::unexpected(ok.error());
  auto env = lmdb::Env::open(options.dir / "state.mdb", options.map_size_mb, 8);
  if (!env) return tl::unexpected(env.error());
  store->env_ = std::move(*env);
  if (auto ok = store->openDatabases(); !ok) return tl::unexpected(ok.error());
  if (auto ok = store->load(); !ok) return tl::unexpected(ok.error());
  store->enforceCap();
  store->loaded_ = true;
  if (options.start_flusher) store->flusher_ = std::thread([s = store.get()] { s->flusherLoop(); });
  return store;
}

// LMDB lets several processes share the file, but the in-memory state must have one owner: a
// second daemon, or the CLI while the daemon runs, gets a clear error instead of diverging.
Result<void> EmbeddedStore::lockDirectory() {
  const auto path = options_.dir / "state.lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) {
    return fail("cannot open " + path.string() + ": " + std::generic_category().message(errno));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(std::exchange(lock_fd_, -1));
    if (error == EWOULDBLOCK) {
      return fail("state directory " + options_.dir.string() +
                  " is in use by another saslguard process (or another store in this one)");
    }
    return fail("cannot lock " + path.string() + ": " + std::generic_category().message(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::write(lock_fd_, pid.data(), pid.size()) < 0) {
    spdlog::warn("state: cannot write the pid into {}", path.string());
  }
  return {};
}

Result<void> EmbeddedStore::openDatabases() {
  auto txn = lmdb::Txn::beginWrite(env_);
  if (!txn) return tl::unexpected(txn.error());
  auto registry = txn->openDb("registry", true);
  auto accounts = txn->openDb(kAccountRecordsDb, true);
  auto legacy_accounts = txn->openDb(kLegacyAccountsDb, true);
  auto audit = txn->openDb("audit", true);
  auto journal_a = txn->openDb("journal-a", true);
  auto journal_b = txn->openDb("journal-b", true);
  for (auto* db : {&registry, &accounts, &legacy_accounts, &audit, &journal_a, &journal_b}) {
    if (!*db) return tl::unexpected(db->error());
  }
  registry_db_ = *registry;
  accounts_db_ = *accounts;
  audit_db_ = *audit;
  journal_db_[0] = *journal_a;
  journal_db_[1] = *journal_b;
  return txn->commit();
}

// Reads the registry (every mark, expired ones too: the flusher retires those with an audit
// entry), the account records and the journals; forgets what has expired or gone idle
// meanwhile; then folds the journals into the accounts database.
Result<void> EmbeddedStore::load() {
  const std::int64_t now_s = floorSeconds(wallClockMs());
  std::size_t replayed = 0;
  std::size_t unreadable = 0;
  std::size_t legacy_records = 0;
  // Records of an unknown (newer) format in the legacy database: moved as they are.
  std::vector<std::pair<std::string, std::string>> foreign_legacy_records;
  {
    auto txn = lmdb::Txn::beginRead(env_);
    if (!txn) return tl::unexpected(txn.error());
    auto legacy_db = txn->openDb(kLegacyAccountsDb, false);
    if (!legacy_db) return tl::unexpected(legacy_db.error());
    {
      std::size_t records = 0;
      for (MDB_dbi db : {accounts_db_, *legacy_db}) records += txn->entries(db).value_or(0);
      for (std::size_t i = 0; i < shards_.kShards; ++i) {
        shards_.shard(i).lock()->accounts.reserve(records / shards_.kShards + 1);
      }
    }

    auto marks = lmdb::Cursor::open(*txn, registry_db_);
    if (!marks) return tl::unexpected(marks.error());
    for (auto row = marks->first();; row = marks->next()) {
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      auto [key, value] = **row;
      auto mark = codec::decodeMark(value);
      if (!mark) {  // never drop a mark silently: a newer version may have written it
        spdlog::error("state: unreadable registry record for account {:?}; ignored", key);
        continue;
      }
      const std::uint64_t hash = accountHash(key);
      auto shard = shardOf(hash).lock();
      auto [entry, inserted] = shard->accounts.insert(key, hash);
      AccountState& state = entry->state;
      state.mark = std::make_unique<Mark>(std::move(*mark));
      state.last_active_s = toUnixSeconds32(floorSeconds(toUnixMs(state.mark->last_seen)));
      if (state.mark->expires) {
        expiring_.lock()->insert_or_assign(std::string(key), toUnixMs(*state.mark->expires));
      }
      accounts_.fetch_add(1, std::memory_order_relaxed);
      marks_.fetch_add(1, std::memory_order_relaxed);
    }

    // The legacy database first: a record in both is newer in account-records (the fold that
    // moves them was interrupted before it emptied the legacy database).
    for (const bool legacy : {true, false}) {
      auto records = lmdb::Cursor::open(*txn, legacy ? *legacy_db : accounts_db_);
      if (!records) return tl::unexpected(records.error());
      for (auto row = records->first();; row = records->next()) {
        if (!row) return tl::unexpected(row.error());
        if (!*row) break;
        auto [key, value] = **row;
        if (!legacy && key.empty()) continue;
        const std::string_view account = legacy ? key : accountOfRecordKey(key);
        const std::uint64_t hash = accountHash(account);
        auto shard = shardOf(hash).lock();
        auto decoded = decodeAccount(value, shard->names);
        if (!decoded) {
          const bool foreign =
              !value.empty() && static_cast<std::uint8_t>(value[0]) != codec::kFormatVersion;
          spdlog::warn("state: account record for {:?}: {}; {}", account, decoded.error().message,
                       foreign ? "ignored" : "dropped");
          if (foreign && legacy) foreign_legacy_records.emplace_back(account, value);
          if (!foreign && !legacy) shard->unsaved_deleted.emplace_back(account);
          ++unreadable;
          continue;
        }
        auto [entry, inserted] = shard->accounts.insert(account, hash);
        AccountState& state = entry->state;
        state.counters = std::move(decoded->state.counters);
        state.sets = std::move(decoded->state.sets);
        state.last_active_s = std::max(state.last_active_s, decoded->state.last_active_s);
        const auto& activity = decoded->mark_activity;
        if (state.mark && activity && activity->first_seen_ms == toUnixMs(state.mark->first_seen)) {
          state.mark->hits = std::max(state.mark->hits, activity->hits);
          state.mark->last_seen =
              std::max(state.mark->last_seen, fromUnixMs(activity->last_seen_ms));
        }
        if (legacy) {
          state.unsaved = 1;  // the fold below writes it into account-records
          ++legacy_records;
        }
        if (inserted) accounts_.fetch_add(1, std::memory_order_relaxed);
      }
    }

    auto journal = replayJournals(*txn);
    if (!journal) return tl::unexpected(journal.error());
    replayed = *journal;
  }

  std::size_t dropped = 0;
  for (std::size_t i = 0; i < shards_.kShards; ++i) {
    auto shard = shards_.shard(i).lock();
    std::vector<std::size_t> forgotten;
    for (std::size_t slot = 0; slot < shard->accounts.slotCount(); ++slot) {
      AccountEntry* entry = shard->accounts.entryAt(slot);
      if (entry == nullptr) continue;
      AccountState& state = entry->state;
      state.prune(now_s);
      if (state.mark) continue;
      if (now_s - std::int64_t{state.last_active_s} >= options_.idle_expiry_s || !state.hasData()) {
        forgotten.push_back(slot);
      }
    }
    dropped += forgotten.size();
    forgetAll(*shard, forgotten);
  }

  // Fold: whatever the journals held, and the records dropped above, reach the accounts database
  // now, so the journals start empty. Nothing needs journaling then.
  bool fold = replayed > 0 || legacy_records > 0 || !foreign_legacy_records.empty();
  for (std::size_t i = 0; i < shards_.kShards; ++i) {
    auto shard = shards_.shard(i).lock();
    shard->deleted.clear();
    fold = fold || !shard->unsaved_deleted.empty();
  }
  if (fold) {
    checkpointing_ = true;
    checkpoint_shard_ = 0;
    if (auto ok = checkpointStep(true); !ok) return ok;  // drops the inactive journal
    auto txn = lmdb::Txn::beginWrite(env_);
    if (!txn) return tl::unexpected(txn.error());
    if (auto ok = txn->drop(journal_db_[active_journal_]); !ok) return ok;
    // Every legacy record is in account-records now (accounts dropped above are deleted there).
    std::string key;
    for (const auto& [account, value] : foreign_legacy_records) {
      setRecordKey(key, accountHash(account) % shards_.kShards, account);
      if (auto ok = txn->put(accounts_db_, key, value); !ok) return ok;
    }
    auto legacy_db = txn->openDb(kLegacyAccountsDb, false);
    if (!legacy_db) return tl::unexpected(legacy_db.error());
    if (auto ok = txn->drop(*legacy_db); !ok) return ok;
    if (auto ok = txn->commit(); !ok) return ok;
  }
  env_.releaseMappedPages();
  spdlog::info(
      "state: loaded {} accounts ({} marked) from {}; {} journal records replayed, {} idle or "
      "empty accounts dropped, {} unreadable records{}",
      accounts_.load(), marks_.load(), (options_.dir / "state.mdb").string(), replayed, dropped,
      unreadable,
      legacy_records > 0 ? fmt::format(", {} moved to account-records", legacy_records)
                         : std::string());
  return {};
}

// Applies both journals, older first, over what the accounts database gave. Returns how many
// records they held; leaves the touched accounts unsaved so the fold writes them.
Result<std::size_t> EmbeddedStore::replayJournals(lmdb::Txn& txn) {
  std::uint64_t first_seq[2] = {0, 0};
  for (int j = 0; j < 2; ++j) {
    auto cursor = lmdb::Cursor::open(txn, journal_db_[j]);
    if (!cursor) return tl::unexpected(cursor.error());
    auto first = cursor->first();
    if (!first) return tl::unexpected(first.error());
    if (*first && (*first)->first.size() >= 8) first_seq[j] = readBigEndian64((*first)->first);
  }
  const int older = first_seq[0] <= first_seq[1] ? 0 : 1;
  std::size_t rows = 0;
  for (int j : {older, 1 - older}) {
    auto cursor = lmdb::Cursor::open(txn, journal_db_[j]);
    if (!cursor) return tl::unexpected(cursor.error());
    for (auto row = cursor->first();; row = cursor->next()) {
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      auto [key, value] = **row;
      ++rows;
      if (key.size() <= 8) continue;
      journal_seq_ = std::max(journal_seq_, readBigEndian64(key) + 1);
      const std::string_view account = key.substr(8);
      const std::uint64_t hash = accountHash(account);
      auto shard = shardOf(hash).lock();
      AccountEntry* entry = shard->accounts.find(account, hash);
      if (value.empty()) {  // a deletion
        if (entry == nullptr) continue;
        if (entry->state.mark) {
          entry->state.counters.clear();
          entry->state.sets.clear();
          entry->state.unsaved = 1;
        } else {
          forget(*shard, entry, hash);
        }
        continue;
      }
      auto decoded = decodeAccount(value, shard->names);
      if (!decoded) {
        spdlog::warn("state: journal record for {:?}: {}; skipped", account,
                     decoded.error().message);
        continue;
      }
      if (entry == nullptr) {
        entry = shard->accounts.insert(account, hash).first;
        accounts_.fetch_add(1, std::memory_order_relaxed);
      }
      AccountState& state = entry->state;
      state.counters = std::move(decoded->state.counters);
      state.sets = std::move(decoded->state.sets);
      state.last_active_s = std::max(state.last_active_s, decoded->state.last_active_s);
      const auto& activity = decoded->mark_activity;
      if (state.mark && activity && activity->first_seen_ms == toUnixMs(state.mark->first_seen)) {
        state.mark->hits = std::max(state.mark->hits, activity->hits);
        state.mark->last_seen = std::max(state.mark->last_seen, fromUnixMs(activity->last_seen_ms));
      }
      state.unsaved = 1;
    }
  }
  return rows;
}

EmbeddedStore::~EmbeddedStore() {
  if (auto ok = close(); !ok) spdlog::error("state: closing the store: {}", ok.error().message);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<void> EmbeddedStore::close() {
  if (closed_.exchange(true) || !env_) return {};
  if (!loaded_) {  // open() failed half way: write nothing over what is on disk
    env_.close();
    return {};
  }
  {
    std::lock_guard lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  Result<void> result = flushNow();
  std::lock_guard flush_lock(flush_mutex_);
  // Finish a running checkpoint, then fold what was journaled meanwhile.
  for (int round = 0; round < 2 && result; ++round) result = checkpointStep(true);
  std::lock_guard registry_lock(registry_mutex_);
  env_.close();
  if (lock_fd_ >= 0) ::close(std::exchange(lock_fd_, -1));  // another process may take over
  return result;
}

// ---- group commit -----------------------------------------------------------------------------

Result<void> EmbeddedStore::flush() {
  if (closed_.load()) return fail("state store is closed");
  return flushNow();
}

void EmbeddedStore::flusherLoop() {
  const auto interval = std::chrono::milliseconds(options_.flush_interval_ms);
  auto next = SteadyClock::now() + interval;
  std::unique_lock lock(stop_mutex_);
  while (!stop_cv_.wait_until(lock, next, [this] { return stop_; })) {
    lock.unlock();
    (void)flushNow();  // logs and counts its own failure; the next interval retries
    lock.lock();
    // Fixed pace: a slow commit shortens the next wait instead of stretching the interval.
    next = std::max(next + interval, SteadyClock::now());
  }
}

Result<void> EmbeddedStore::flushNow() {
  std::lock_guard flush_lock(flush_mutex_);
  if (!env_) return fail("state store is closed");
  const auto started = SteadyClock::now();
  const std::int64_t now_ms = backgroundNowMs();
  const std::int64_t now_s = floorSeconds(now_ms);

  for (std::size_t i = 0; i < shards_.kShards; ++i) sweepSlice(*shards_.shard(i).lock(), now_s);
  enforceCap();
  RecordBatch& batch = journal_batch_;
  batch.clear();
  for (std::size_t i = 0; i < shards_.kShards; ++i) {
    auto shard = shards_.shard(i).lock();
    for (AccountEntry* entry : shard->dirty) {
      batch.put(entry->key(), entry->state, shard->names);
      entry->state.dirty_slot = 0;
    }
    shard->dirty.clear();
    for (const auto& key : shard->deleted) batch.erase(key);
    shard->deleted.clear();
  }
  std::vector<DueMark> due;
  {
    auto expiring = expiring_.lock();
    for (const auto& [account, expires_ms] : *expiring) {
      if (expires_ms <= now_ms) due.push_back(DueMark{account, expires_ms});
    }
  }

  if (!batch.records.empty() || !due.empty()) {
    batch.sortAndDeduplicate();
    auto written = writeJournal(now_ms, due);
    ++journal_seq_;  // even after a failure: part of it may be committed
    if (!written) {
      flush_errors_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("state: group commit of {} accounts failed, retrying next interval: {}",
                    batch.records.size(), written.error().message);
      requeueJournal();
      return written;
    }
    flushes_.fetch_add(1, std::memory_order_relaxed);
    const TimePoint now = fromUnixMs(now_ms);
    for (const auto& mark : due) forgetMark(mark.account, now);
    auto expiring = expiring_.lock();
    for (const auto& mark : due) {
      auto it = expiring->find(mark.account);
      if (it != expiring->end() && it->second == mark.expires_ms) expiring->erase(it);
    }
  }
  const std::size_t journaled = batch.records.size();
  batch.clear();
  const auto journal_done = SteadyClock::now();

  if (auto folded = checkpointStep(false); !folded) {
    flush_errors_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("state: checkpoint failed, retrying next interval: {}", folded.error().message);
    return folded;
  }
  // What a kill -9 loses is what changed since the last journal commit: a flush that takes
  // half the interval (and at least 100 ms) widens that window, and the operator should hear of
  // it — once per kSlowFlushWarningEvery at most, with the count of the others.
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto finished = SteadyClock::now();
  const auto took = finished - started;
  if (took >= std::max(milliseconds(options_.flush_interval_ms) / 2, milliseconds(100))) {
    ++slow_flushes_unreported_;
    if (finished - last_slow_flush_warning_ >= kSlowFlushWarningEvery) {
      spdlog::warn(
          "state: slow flush: {} ms (journal of {} accounts {} ms, checkpoint step {} ms), {} "
          "slow flushes since the last warning; a crash now loses up to flush_interval_ms plus "
          "this",
          duration_cast<milliseconds>(took).count(), journaled,
          duration_cast<milliseconds>(journal_done - started).count(),
          duration_cast<milliseconds>(finished - journal_done).count(), slow_flushes_unreported_);
      last_slow_flush_warning_ = finished;
      slow_flushes_unreported_ = 0;
    }
  }
  return {};
}

// The journal records of this flush, plus the retirement of marks whose expiry has passed
// (decided on the committed registry record, so a concurrent re-mark or clear wins).
Result<void> EmbeddedStore::writeJournal(std::int64_t now_ms, const std::vector<DueMark>& due) {
  const TimePoint now = fromUnixMs(now_ms);
  auto expireDue = [&](lmdb::Txn& txn) -> Result<void> {
    for (const auto& mark : due) {
      auto stored = txn.get(registry_db_, mark.account);
      if (!stored) return tl::unexpected(stored.error());
      if (!*stored) continue;  // cleared meanwhile, perhaps by another process
      auto record = codec::decodeMark(**stored);
      if (!record || isLive(*record, now)) continue;
      if (auto ok = txn.del(registry_db_, mark.account); !ok) return tl::unexpected(ok.error());
      auto ok = appendAudit(txn, AuditEntry{now, mark.account, "expire", record->detector,
                                            "mark expired", record->evidence});
      if (!ok) return tl::unexpected(ok.error());
    }
    return {};
  };
  auto written = writeRecords(journal_db_[active_journal_], journal_batch_, true, expireDue);
  if (written) journal_bytes_ += journal_batch_.bytes.size() + 8 * journal_batch_.records.size();
  return written;
}

// Writes a batch in transactions of at most kRecordsPerTxn records (the first one also runs
// `first_txn_extra`): journal records are appended under seq + account, account records are
// put or deleted under the account.
Result<void> EmbeddedStore::writeRecords(
    MDB_dbi db, const RecordBatch& batch, bool journal,
    const std::function<Result<void>(lmdb::Txn&)>& first_txn_extra) {
  std::size_t next = 0;
  do {
    auto txn = lmdb::Txn::beginWrite(env_);
    if (!txn) return tl::unexpected(txn.error());
    if (next == 0 && first_txn_extra) {
      if (auto ok = first_txn_extra(*txn); !ok) return ok;
    }
    const std::size_t end = std::min(batch.records.size(), next + kRecordsPerTxn);
    for (; next < end; ++next) {
      const auto& record = batch.records[next];
      Result<void> ok;
      if (journal) {
        key_scratch_.clear();
        appendBigEndian64(key_scratch_, journal_seq_);
        key_scratch_.append(batch.key(record));
        ok = txn->append(db, key_scratch_, record.erase ? std::string_view() : batch.value(record));
      } else if (record.erase) {
        auto deleted = txn->del(db, batch.key(record));
        if (!deleted) ok = tl::unexpected(deleted.error());
      } else {
        ok = txn->put(db, batch.key(record), batch.value(record));
      }
      if (!ok) return ok;
    }
    if (auto ok = txn->commit(); !ok) return ok;
  } while (next < batch.records.size());
  return {};
}

// After a failed journal flush: what was taken out of the shards goes back, unless it changed
// since. (Parts that did commit are simply written again.)
void EmbeddedStore::requeueJournal() {
  RecordBatch& batch = journal_batch_;
  for (const auto& record : batch.records) {
    const std::string_view key = batch.key(record);
    const std::uint64_t hash = accountHash(key);
    auto shard = shardOf(hash).lock();
    AccountEntry* entry = shard->accounts.find(key, hash);
    if (!record.erase && entry != nullptr) markDirty(*shard, *entry);
    if (record.erase) shard->deleted.emplace_back(key);  // even if back: it must not revive
  }
  batch.clear();
}

// ---- checkpoints ------------------------------------------------------------------------------

// Starts a checkpoint when the journal is big or old enough (or `complete`), then folds shards
// into the accounts database until a quarter of the flush interval is used (all of them when
// `complete`). Flushes meanwhile append to the other journal.
Result<void> EmbeddedStore::checkpointStep(bool complete) {
  const auto start = SteadyClock::now();
  if (!checkpointing_) {
    // By size: once the journal is as large as the account records (and 32 MiB), so that the
    // pages a checkpoint rewrites (with traffic spread over many accounts, most of them) are
    // about one byte per journaled byte, and a start-up replays no more than that.
    const bool due =
        journal_bytes_ > 0 &&
        (complete ||
         start - last_checkpoint_ >= std::chrono::seconds(options_.checkpoint_interval_s) ||
         (journal_bytes_ >= kCheckpointBytes &&
          journal_bytes_ >= databaseBytes(env_, accounts_db_)));
    if (!due) return {};
    checkpointing_ = true;
    checkpoint_shard_ = 0;
    active_journal_ ^= 1;  // empty: dropped when the previous checkpoint finished
    journal_bytes_ = 0;
  }
  const auto budget = std::chrono::milliseconds(options_.flush_interval_ms) / 4;
  std::size_t batch_first_shard = checkpoint_shard_;
  while (checkpoint_shard_ < shards_.kShards) {
    collectUnsaved(checkpoint_shard_++);
    const bool over_budget = !complete && SteadyClock::now() - start >= budget;
    if (checkpoint_batch_.records.size() < kRecordsPerTxn && checkpoint_shard_ < shards_.kShards &&
        !over_budget) {
      continue;
    }
    if (auto ok = writeCheckpointBatch(); !ok) {
      checkpoint_shard_ = batch_first_shard;  // those shards are not in the database yet
      return ok;
    }
    batch_first_shard = checkpoint_shard_;
    if (over_budget) break;
  }
  if (checkpoint_shard_ < shards_.kShards) return {};
  return finishCheckpoint();
}

// Adds one shard's unsaved accounts and deletions to the checkpoint batch, under their record
// keys (shard, account).
void EmbeddedStore::collectUnsaved(std::size_t index) {
  RecordBatch& batch = checkpoint_batch_;
  auto shard = shards_.shard(index).lock();
  const AccountTable& table = shard->accounts;
  for (std::size_t slot = 0; slot < table.slotCount(); ++slot) {
    AccountEntry* entry = table.entryAt(slot);
    if (entry == nullptr || !entry->state.unsaved) continue;
    setRecordKey(key_scratch_, index, entry->key());
    batch.put(key_scratch_, entry->state, shard->names);
    entry->state.unsaved = 0;
  }
  // A forgotten account deletes its record even if it is back (and not yet changed): the record
  // is older than the forgetting.
  for (const auto& account : shard->unsaved_deleted) {
    setRecordKey(key_scratch_, index, account);
    batch.erase(key_scratch_);
  }
  shard->unsaved_deleted.clear();
}

// Writes the checkpoint batch to the accounts database; after a failure everything in it goes
// back to its shard as unsaved.
Result<void> EmbeddedStore::writeCheckpointBatch() {
  RecordBatch& batch = checkpoint_batch_;
  batch.sortAndDeduplicate();
  auto written = writeRecords(accounts_db_, batch, false, nullptr);
  if (!written) {
    for (const auto& record : batch.records) {
      const std::string_view account = accountOfRecordKey(batch.key(record));
      const std::uint64_t hash = accountHash(account);
      auto shard = shardOf(hash).lock();
      if (record.erase) {
        shard->unsaved_deleted.emplace_back(account);
      } else if (AccountEntry* entry = shard->accounts.find(account, hash)) {
        entry->state.unsaved = 1;
      }
    }
  }
  batch.clear();
  return written;
}

// Every account the retiring journal mentions is in the accounts database now: drop it.
Result<void> EmbeddedStore::finishCheckpoint() {
  auto txn = lmdb::Txn::beginWrite(env_);
  if (!txn) return tl::unexpected(txn.error());
  if (auto ok = txn->drop(journal_db_[active_journal_ ^ 1]); !ok) return ok;
  if (auto ok = txn->commit(); !ok) return ok;
  checkpointing_ = false;
  last_checkpoint_ = SteadyClock::now();
  env_.releaseMappedPages();
  return {};
}

}  // namespace saslguard::store
