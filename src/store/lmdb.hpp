// lmdb.hpp — a thin RAII layer over LMDB (liblmdb): an environment, transactions and cursors
// whose failures come back as Result values with messages fit for a log line. Only what the
// embedded store needs; keys and values are byte strings (std::string_view into the map).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.hpp"

namespace saslguard::store::lmdb {

// "what: reason"; MDB_MAP_FULL names the setting that raises the limit.
std::string describe(std::string_view what, int rc, MDB_env* env = nullptr);

class Env {
 public:
  // Opens (creating if missing) the single-file environment `file` (plus `file`-lock).
  static Result<Env> open(const std::filesystem::path& file, std::int64_t map_size_mb,
                          unsigned max_dbs);
  Env() = default;
  Env(Env&& other) noexcept
      : env_(std::exchange(other.env_, nullptr)),
        map_(std::exchange(other.map_, nullptr)),
        map_size_(std::exchange(other.map_size_, 0)) {}
  Env& operator=(Env&& other) noexcept;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  ~Env();

  MDB_env* get() const { return env_; }
  explicit operator bool() const { return env_ != nullptr; }
  void close();
  // Unmaps the pages this process has read through the (read-only) map; they stay in the page
  // cache and fault back in when read again. Keeps the process's RSS to its own memory.
  void releaseMappedPages();

 private:
  explicit Env(MDB_env* env) : env_(env) {}
  MDB_env* env_ = nullptr;
  void* map_ = nullptr;  // the map as /proc/self/maps shows it (LMDB does not tell)
  std::size_t map_size_ = 0;
};

class Txn {
 public:
  static Result<Txn> beginRead(Env& env) { return begin(env, MDB_RDONLY); }
  static Result<Txn> beginWrite(Env& env) { return begin(env, 0); }
  Txn(Txn&& other) noexcept
      : txn_(std::exchange(other.txn_, nullptr)), env_(std::exchange(other.env_, nullptr)) {}
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { abort(); }

  // Opens (in a write transaction: creates) the named database.
  Result<MDB_dbi> openDb(const char* name, bool create);
  // The value, valid until the transaction ends or writes to that page; nullopt when absent.
  Result<std::optional<std::string_view>> get(MDB_dbi dbi, std::string_view key);
  Result<void> put(MDB_dbi dbi, std::string_view key, std::string_view value);
  // Like put, but returns false (and writes nothing) when the key exists.
  Result<bool> putNew(MDB_dbi dbi, std::string_view key, std::string_view value);
  // Appends: the key must sort after every key in the database (fast, pages filled in order).
  Result<void> append(MDB_dbi dbi, std::string_view key, std::string_view value);
  // Empties the database without visiting its leaf pages.
  Result<void> drop(MDB_dbi dbi);
  Result<std::size_t> entries(MDB_dbi dbi);
  // Returns false when the key was not there.
  Result<bool> del(MDB_dbi dbi, std::string_view key);
  Result<void> commit();
  void abort();

  MDB_txn* get() const { return txn_; }
  MDB_env* env() const { return env_; }

 private:
  Txn(MDB_txn* txn, MDB_env* env) : txn_(txn), env_(env) {}
  static Result<Txn> begin(Env& env, unsigned flags);
  MDB_txn* txn_ = nullptr;
  MDB_env* env_ = nullptr;
};

class Cursor {
 public:
  using Entry = std::pair<std::string_view, std::string_view>;

  static Result<Cursor> open(Txn& txn, MDB_dbi dbi);
  Cursor(Cursor&& other) noexcept
      : cursor_(std::exchange(other.cursor_, nullptr)), env_(other.env_) {}
  Cursor& operator=(Cursor&&) = delete;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor();

  Result<std::optional<Entry>> first() { return move(nullptr, MDB_FIRST); }
  // The first entry whose key is >= key.
  Result<std::optional<Entry>> seek(std::string_view key);
  Result<std::optional<Entry>> next() { return move(nullptr, MDB_NEXT); }
  Result<std::optional<Entry>> last() { return move(nullptr, MDB_LAST); }
  Result<std::optional<Entry>> prev() { return move(nullptr, MDB_PREV); }

 private:
  Cursor(MDB_cursor* cursor, MDB_env* env) : cursor_(cursor), env_(env) {}
  Result<std::optional<Entry>> move(MDB_val* key, MDB_cursor_op op);
  MDB_cursor* cursor_ = nullptr;
  MDB_env* env_ = nullptr;
};

}  // namespace saslguard::store::lmdb
