// embedded_store.hpp — the Store kept in this process: hot state in 64 locked shards of
// in-memory tables, persisted to LMDB behind the request path (a journal group-committed every
// flush_interval_ms, folded into the accounts database by incremental checkpoints); registry
// marks and clears are committed synchronously before they return. docs/state.md has the why.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/guarded.hpp"
#include "store/account_state.hpp"
#include "store/account_table.hpp"
#include "store/lmdb.hpp"
#include "store/store.hpp"

namespace saslguard::store {

struct EmbeddedStoreOptions {
  std::filesystem::path dir;    // created if missing; holds state.mdb, state.mdb-lock, state.lock
  int flush_interval_ms = 500;  // counters and sets reach the disk at this pace
  std::int64_t max_accounts = 2'000'000;  // accounts held in memory at most (marked ones always)
  int idle_expiry_s = 172800;             // an unmarked account idle this long is forgotten
  std::int64_t map_size_mb = 4096;        // LMDB map size (state.lmdb_map_size_mb)
  bool start_flusher = true;  // false: the CLI on a stopped daemon; flush() and close() write
  std::uint32_t max_set_entries = 1024;  // per set; the least recently seen entry makes room
  // How often the journal is folded into the accounts database (also when it passes 32 MB).
  int checkpoint_interval_s = 60;
  // Wall clock for loading at open(). Background work (idle expiry, mark expiry) follows the
  // latest `now` the calls passed, so an injected timeline stays consistent. Empty: Clock::now.
  std::function<TimePoint()> clock;
};

class EmbeddedStore final : public Store {
 public:
  // Fails when another store (process) has the directory open: LMDB allows several readers,
  // but the in-memory state must have one owner.
  static Result<std::unique_ptr<EmbeddedStore>> open(const EmbeddedStoreOptions& options);
  ~EmbeddedStore() override;
  EmbeddedStore(const EmbeddedStore&) = delete;
  EmbeddedStore& operator=(const EmbeddedStore&) = delete;

  Result<BatchResult> execute(const Batch& batch, TimePoint now) override;
  Result<MarkOutcome> mark(const std::string& account, const Mark& mark, TimePoint now) override;
  Result<bool> clear(const std::string& account, const ClearInfo& info, TimePoint now) override;
  Result<std::optional<Mark>> getMark(const std::string& account, TimePoint now) override;
  Result<std::vector<std::pair<std::string, Mark>>> listMarks(const std::string& after,
                                                              std::size_t limit,
                                                              TimePoint now) override;
  Result<AccountView> view(const std::string& account, TimePoint now) override;
  Result<std::size_t> forgetSets(const std::string& account, std::string_view name_prefix,
                                 TimePoint now) override;
  Result<void> flush() override;
  StoreStats stats() override;

  // Stops the flusher, writes everything pending and folds the journal into the accounts
  // database (so the next open reads no journal); later calls fail. Call it once the request
  // threads have stopped. Idempotent; the destructor calls it and logs a failure.
  Result<void> close();

  // Longest account name accepted (LMDB keys are at most 511 bytes; journal keys add 8 and
  // audit keys 13).
  static constexpr std::size_t kMaxAccountBytes = 480;

 private:
  struct Shard {
    AccountTable accounts;
    std::vector<AccountEntry*> dirty;          // changed since the last journal flush
    std::vector<std::string> deleted;          // forgotten since the last journal flush
    std::vector<std::string> unsaved_deleted;  // forgotten since the last checkpoint
    NameTable names;
    std::size_t sweep_slot = 0;                    // where the next idle sweep slice starts
    std::uint64_t random = 0x9e3779b97f4a7c15ull;  // for eviction sampling
  };

  // Account records (or deletions) gathered under the shard locks and written without them.
  struct RecordBatch {
    std::string bytes;  // keys and values back to back
    struct Record {
      std::size_t key_offset, key_size, value_offset, value_size;
      bool erase;
    };
    std::vector<Record> records;
    void put(std::string_view key, const AccountState& state, const NameTable& names);
    void erase(std::string_view key);
    std::string_view key(const Record& r) const {
      return {bytes.data() + r.key_offset, r.key_size};
    }
    std::string_view value(const Record& r) const {
      return {bytes.data() + r.value_offset, r.value_size};
    }
    // Sorts by key; of a deletion and a write of the same key the write is the newer.
    void sortAndDeduplicate();
    void clear();  // keeps a moderate capacity, releases the rest
  };

  struct DueMark {
    std::string account;
    std::int64_t expires_ms;
  };

  explicit EmbeddedStore(const EmbeddedStoreOptions& options);

  // embedded_store_persistence.cpp: open, load, journal, checkpoints.
  Result<void> lockDirectory();
  Result<void> openDatabases();
  Result<void> load();
  Result<std::size_t> replayJournals(lmdb::Txn& txn);
  Result<void> flushNow();
  Result<void> writeJournal(std::int64_t now_ms, const std::vector<DueMark>& due);
  Result<void> checkpointStep(bool complete);
  void collectUnsaved(std::size_t index);
  Result<void> writeCheckpointBatch();
  Result<void> finishCheckpoint();
  Result<void> writeRecords(MDB_dbi db, const RecordBatch& batch, bool journal,
                            const std::function<Result<void>(lmdb::Txn&)>& first_txn_extra);
  void requeueJournal();
  void flusherLoop();

  // embedded_store.cpp: the hot path, eviction and the registry.
  void noteNow(std::int64_t now_ms);
  std::int64_t backgroundNowMs() const;
  std::int64_t wallClockMs() const;
  Guarded<Shard>& shardOf(std::uint64_t hash) { return shards_.shard(hash % shards_.kShards); }
  static void markDirty(Shard& shard, AccountEntry& entry);
  void forget(Shard& shard, AccountEntry* entry, std::uint64_t hash);
  void forgetAll(Shard& shard, const std::vector<std::size_t>& slots);
  void evictForInsert(Shard& shard, const AccountEntry* keep);
  void sweepSlice(Shard& shard, std::int64_t now_s);
  void enforceCap();
  void mirrorMark(const std::string& account, const Mark& mark, std::int64_t now_s);
  void forgetMark(std::string_view account, std::optional<TimePoint> expired_at);
  Result<void> appendAudit(lmdb::Txn& txn, const AuditEntry& entry);

  EmbeddedStoreOptions options_;
  int lock_fd_ = -1;  // flock()ed state.lock: one owner per directory
  lmdb::Env env_;
  MDB_dbi registry_db_ = 0;
  MDB_dbi accounts_db_ = 0;
  MDB_dbi audit_db_ = 0;
  MDB_dbi journal_db_[2] = {0, 0};

  Sharded<Shard, 64> shards_;
  std::mutex registry_mutex_;  // orders mark()/clear(): LMDB commit, then the memory mirror
  Guarded<std::map<std::string, std::int64_t, std::less<>>> expiring_;  // account -> expires ms

  // Guarded by flush_mutex_: one journal flush or checkpoint step at a time.
  std::mutex flush_mutex_;
  RecordBatch journal_batch_;
  RecordBatch checkpoint_batch_;
  std::string key_scratch_;
  std::uint64_t journal_seq_ = 1;  // of the next flush; journal keys are seq + account
  std::chrono::steady_clock::time_point last_slow_flush_warning_{};
  std::uint64_t slow_flushes_unreported_ = 0;
  int active_journal_ = 0;           // flushes append here; the other is empty or being folded
  std::uint64_t journal_bytes_ = 0;  // written to the active journal
  bool checkpointing_ = false;
  std::size_t checkpoint_shard_ = 0;  // next shard the running checkpoint collects
  std::chrono::steady_clock::time_point last_checkpoint_;

  std::atomic<std::int64_t> accounts_{0};
  std::atomic<std::int64_t> marks_{0};
  std::atomic<std::uint64_t> evicted_{0};
  std::atomic<std::uint64_t> flushes_{0};
  std::atomic<std::uint64_t> flush_errors_{0};
  std::atomic<std::int64_t> observed_ms_{0};  // latest `now` seen (updated at most once a second)
  std::atomic<bool> closed_{false};
  bool loaded_ = false;  // open() completed; until then close() writes nothing

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread flusher_;
};

}  // namespace saslguard::store
