// codec.cpp — see codec.hpp. Integers are written byte by byte so the files do not depend on the
// host's endianness.
#include "store/codec.hpp"

namespace saslguard::store::codec {

// Each value is assembled in a small buffer and appended once: the flusher encodes every changed
// account, and byte-wise push_back (a capacity check per byte) was half of encodeAccount.
void Writer::u32(std::uint32_t v) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out_.append(bytes, sizeof bytes);
}

void Writer::u64(std::uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out_.append(bytes, sizeof bytes);
}

void Writer::varint(std::uint64_t v) {
  char bytes[10];
  std::size_t size = 0;
  while (v >= 0x80) {
    bytes[size++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  bytes[size++] = static_cast<char>(v);
  out_.append(bytes, size);
}

void Writer::str(std::string_view s) {
  varint(s.size());
  out_.append(s);
}

bool Reader::u8(std::uint8_t& v) {
  if (in_.empty()) return false;
  v = static_cast<std::uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool Reader::u32(std::uint32_t& v) {
  if (in_.size() < 4) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(in_[i])} << (8 * i);
  in_.remove_prefix(4);
  return true;
}

bool Reader::u64(std::uint64_t& v) {
  if (in_.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(in_[i])} << (8 * i);
  in_.remove_prefix(8);
  return true;
}

bool Reader::i64(std::int64_t& v) {
  std::uint64_t raw = 0;
  if (!u64(raw)) return false;
  v = static_cast<std::int64_t>(raw);
  return true;
}

bool Reader::varint(std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    std::uint8_t byte = 0;
    if (!u8(byte)) return false;
    v |= std::uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool Reader::str(std::string_view& s) {
  std::uint64_t size = 0;
  if (!varint(size) || size > in_.size()) return false;
  s = in_.substr(0, size);
  in_.remove_prefix(size);
  return true;
}

bool Reader::str(std::string& s) {
  std::string_view view;
  if (!str(view)) return false;
  s.assign(view);
  return true;
}

std::string encodeMark(const Mark& mark) {
  std::string out;
  Writer w(out);
  w.u8(kFormatVersion);
  w.str(mark.detector);
  w.str(mark.reason);
  w.str(mark.evidence);
  w.str(mark.action);
  w.i64(toUnixMs(mark.first_seen));
  w.i64(toUnixMs(mark.last_seen));
  w.u64(mark.hits);
  w.u8(mark.expires ? 1 : 0);
  if (mark.expires) w.i64(toUnixMs(*mark.expires));
  return out;
}

std::optional<Mark> decodeMark(std::string_view bytes) {
  Reader r(bytes);
  Mark mark;
  std::uint8_t version = 0;
  std::uint8_t has_expires = 0;
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  if (!r.u8(version) || version != kFormatVersion) return std::nullopt;
  if (!r.str(mark.detector) || !r.str(mark.reason) || !r.str(mark.evidence) ||
      !r.str(mark.action) || !r.i64(first_ms) || !r.i64(last_ms) || !r.u64(mark.hits) ||
      !r.u8(has_expires)) {
    return std::nullopt;
  }
  mark.first_seen = fromUnixMs(first_ms);
  mark.last_seen = fromUnixMs(last_ms);
  if (has_expires != 0) {
    std::int64_t expires_ms = 0;
    if (!r.i64(expires_ms)) return std::nullopt;
    mark.expires = fromUnixMs(expires_ms);
  }
  return mark;
}

std::string auditPrefix(std::string_view account) {
  std::string key(account);
  key.push_back('\0');
  return key;
}

std::string auditKey(std::string_view account, std::int64_t at_ms, std::uint32_t seq) {
  std::string key = auditPrefix(account);
  const auto at = static_cast<std::uint64_t>(at_ms);
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((at >> (8 * i)) & 0xff));
  for (int i = 3; i >= 0; --i) key.push_back(static_cast<char>((seq >> (8 * i)) & 0xff));
  return key;
}

std::string encodeAudit(const AuditEntry& entry) {
  std::string out;
  Writer w(out);
  w.u8(kFormatVersion);
  w.i64(toUnixMs(entry.at));
  w.str(entry.account);
  w.str(entry.event);
  w.str(entry.by);
  w.str(entry.reason);
  w.str(entry.evidence);
  return out;
}

std::optional<AuditEntry> decodeAudit(std::string_view bytes) {
  Reader r(bytes);
  AuditEntry entry;
  std::uint8_t version = 0;
  std::int64_t at_ms = 0;
  if (!r.u8(version) || version != kFormatVersion || !r.i64(at_ms) || !r.str(entry.account) ||
      !r.str(entry.event) || !r.str(entry.by) || !r.str(entry.reason) || !r.str(entry.evidence)) {
    return std::nullopt;
  }
  entry.at = fromUnixMs(at_ms);
  return entry;
}

}  // namespace saslguard::store::codec
