// codec.hpp — the byte formats the embedded store writes to LMDB: little-endian fixed-width
// integers and length-prefixed strings behind a leading format-version byte, for registry
// marks and audit entries (account records are in account_state.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace saslguard::store::codec {

inline constexpr std::uint8_t kFormatVersion = 1;

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void varint(std::uint64_t v);
  void str(std::string_view s);

 private:
  std::string& out_;
};

// Reads what Writer wrote; every read fails (returns false) past the end instead of reading out
// of bounds, so a truncated or foreign record is rejected, not misread.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(std::uint8_t& v);
  bool u32(std::uint32_t& v);
  bool u64(std::uint64_t& v);
  bool i64(std::int64_t& v);
  bool varint(std::uint64_t& v);
  bool str(std::string_view& s);
  bool str(std::string& s);
  bool atEnd() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// Registry record: the Mark as mark()/clear() last committed it.
std::string encodeMark(const Mark& mark);
std::optional<Mark> decodeMark(std::string_view bytes);

// Audit DB keys: account, NUL, big-endian unix ms, big-endian sequence — so one account's entries
// are contiguous and in time order. Accounts never contain NUL (the store rejects them).
std::string auditPrefix(std::string_view account);
std::string auditKey(std::string_view account, std::int64_t at_ms, std::uint32_t seq);
std::string encodeAudit(const AuditEntry& entry);
std::optional<AuditEntry> decodeAudit(std::string_view bytes);

}  // namespace saslguard::store::codec
