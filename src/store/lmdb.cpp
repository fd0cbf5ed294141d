// lmdb.cpp — see lmdb.hpp. Every LMDB return code other than success, MDB_NOTFOUND and
// MDB_KEYEXIST becomes an Error whose text says which operation failed and why.
#include "store/lmdb.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <tuple>

namespace saslguard::store::lmdb {
namespace {

MDB_val toVal(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}
std::string_view fromVal(const MDB_val& val) {
  return {static_cast<const char*>(val.mv_data), val.mv_size};
}

// The address range the file is mapped at in this process, from /proc/self/maps.
std::pair<void*, std::size_t> findMapping(const std::filesystem::path& file) {
  std::error_code ec;
  const std::string wanted = std::filesystem::canonical(file, ec).string();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (!ec && std::getline(maps, line)) {
    if (line.size() < wanted.size() ||
        line.compare(line.size() - wanted.size(), wanted.size(), wanted) != 0) {
      continue;
    }
    std::istringstream fields(line);
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    char dash = 0;
    if (fields >> std::hex >> begin >> dash >> end && dash == '-' && end > begin) {
      return {reinterpret_cast<void*>(begin), end - begin};
    }
  }
  return {nullptr, 0};
}

}  // namespace

std::string describe(std::string_view what, int rc, MDB_env* env) {
  if (rc == MDB_MAP_FULL) {
    std::size_t map_mb = 0;
    MDB_envinfo info{};
    if (env != nullptr && mdb_env_info(env, &info) == 0) map_mb = info.me_mapsize >> 20;
    return fmt::format(
        "{}: the state database is full (LMDB map of {} MB used up); raise "
        "state.lmdb_map_size_mb",
        what, map_mb);
  }
  return fmt::format("{}: {}", what, mdb_strerror(rc));
}

Result<Env> Env::open(const std::filesystem::path& file, std::int64_t map_size_mb,
                      unsigned max_dbs) {
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return fail(describe("lmdb env create", rc));
  Env env(raw);
  if (int rc = mdb_env_set_mapsize(raw, static_cast<std::size_t>(map_size_mb) << 20); rc != 0) {
    return fail(describe("lmdb set map size (state.lmdb_map_size_mb)", rc));
  }
  if (int rc = mdb_env_set_maxdbs(raw, max_dbs); rc != 0) {
    return fail(describe("lmdb set max dbs", rc));
  }
  // NOSUBDIR: state.mdb and state.mdb-lock sit in the state directory beside other files.
  // NOTLS: read transactions are short and may run on any thread.
  // NORDAHEAD: access is random; read-ahead would only fill the page cache.
  const unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD;
  if (int rc = mdb_env_open(raw, file.c_str(), flags, 0600); rc != 0) {
    return fail(describe(fmt::format("lmdb open {}", file.string()), rc));
  }
  // Reader slots left behind by a killed process would pin old pages forever.
  int stale = 0;
  mdb_reader_check(raw, &stale);
  std::tie(env.map_, env.map_size_) = findMapping(file);
  return env;
}

Env& Env::operator=(Env&& other) noexcept {
  if (this != &other) {
    close();
    env_ = std::exchange(other.env_, nullptr);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
  }
  return *this;
}

Env::~Env() {
  close();
}

void Env::close() {
  if (env_ != nullptr) mdb_env_close(std::exchange(env_, nullptr));
  map_ = nullptr;
}

void Env::releaseMappedPages() {
  if (env_ != nullptr && map_ != nullptr) ::madvise(map_, map_size_, MADV_DONTNEED);
}

Result<Txn> Txn::begin(Env& env, unsigned flags) {
  MDB_txn* txn = nullptr;
  if (int rc = mdb_txn_begin(env.get(), nullptr, flags, &txn); rc != 0) {
    return fail(describe("lmdb begin transaction", rc, env.get()));
  }
  return Txn(txn, env.get());
}

Result<MDB_dbi> Txn::openDb(const char* name, bool create) {
  MDB_dbi dbi = 0;
  if (int rc = mdb_dbi_open(txn_, name, create ? MDB_CREATE : 0, &dbi); rc != 0) {
    return fail(describe(fmt::format("lmdb open database {}", name), rc, env_));
  }
  return dbi;
}

Result<std::optional<std::string_view>> Txn::get(MDB_dbi dbi, std::string_view key) {
  MDB_val k = toVal(key);
  MDB_val v{};
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return fail(describe("lmdb get", rc, env_));
  return std::optional<std::string_view>(fromVal(v));
}

Result<void> Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  if (int rc = mdb_put(txn_, dbi, &k, &v, 0); rc != 0) {
    return fail(describe("lmdb put", rc, env_));
  }
  return {};
}

Result<bool> Txn::putNew(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  int rc = mdb_put(txn_, dbi, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  if (rc != 0) return fail(describe("lmdb put", rc, env_));
  return true;
}

Result<void> Txn::append(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  if (int rc = mdb_put(txn_, dbi, &k, &v, MDB_APPEND); rc != 0) {
    return fail(describe("lmdb append", rc, env_));
  }
  return {};
}

Result<void> Txn::drop(MDB_dbi dbi) {
  if (int rc = mdb_drop(txn_, dbi, 0); rc != 0) return fail(describe("lmdb drop", rc, env_));
  return {};
}

Result<std::size_t> Txn::entries(MDB_dbi dbi) {
  MDB_stat stat{};
  if (int rc = mdb_stat(txn_, dbi, &stat); rc != 0) return fail(describe("lmdb stat", rc, env_));
  return stat.ms_entries;
}

Result<bool> Txn::del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = toVal(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return fail(describe("lmdb delete", rc, env_));
  return true;
}

Result<void> Txn::commit() {
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));  // frees the txn even on failure
  if (rc != 0) return fail(describe("lmdb commit", rc, env_));
  return {};
}

void Txn::abort() {
  if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

Result<Cursor> Cursor::open(Txn& txn, MDB_dbi dbi) {
  MDB_cursor* cursor = nullptr;
  if (int rc = mdb_cursor_open(txn.get(), dbi, &cursor); rc != 0) {
    return fail(describe("lmdb open cursor", rc, txn.env()));
  }
  return Cursor(cursor, txn.env());
}

Cursor::~Cursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

Result<std::optional<Cursor::Entry>> Cursor::seek(std::string_view key) {
  if (key.empty()) return first();  // LMDB rejects empty keys
  MDB_val k = toVal(key);
  return move(&k, MDB_SET_RANGE);
}

Result<std::optional<Cursor::Entry>> Cursor::move(MDB_val* key, MDB_cursor_op op) {
  MDB_val k{};
  if (key != nullptr) k = *key;
  MDB_val v{};
  int rc = mdb_cursor_get(cursor_, &k, &v, op);
  if (rc == MDB_NOTFOUND) return std::optional<Entry>();
  if (rc != 0) return fail(describe("lmdb cursor", rc, env_));
  return std::optional<Entry>(Entry{fromVal(k), fromVal(v)});
}

}  // namespace saslguard::store::lmdb
