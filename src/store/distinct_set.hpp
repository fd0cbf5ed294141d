// distinct_set.hpp — a set of distinct values (client IPs, countries) in which every entry
// expires ttl_s after it was last seen. Kept as a small vector of 24-byte members (the first two
// live inside the object): the sets detectors use hold a handful of entries, and a cap keeps a
// hostile account from growing one without bound.
#pragma once

#include <array>
#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace saslguard::store {

// A set member's text in 17 bytes, without an allocation for what sets hold: texts of up to 16
// bytes inline (IPv4 addresses, country codes, short IPv6 addresses), longer IPv6 addresses in
// canonical form as their 16 binary bytes; only other long texts go to the heap. The encoding
// is a function of the text, so two values are equal exactly when their texts are.
class SetValue {
 public:
  // Big enough for any IPv6 address in text (INET6_ADDRSTRLEN).
  using TextBuffer = std::array<char, 46>;

  SetValue() = default;
  explicit SetValue(std::string_view text);
  SetValue(const SetValue& other);
  SetValue(SetValue&& other) noexcept;
  SetValue& operator=(const SetValue& other);
  SetValue& operator=(SetValue&& other) noexcept;
  ~SetValue();

  // The text; `buffer` holds it when it is not stored as text.
  std::string_view view(TextBuffer& buffer) const;
  std::string text() const;
  bool equals(std::string_view text) const;
  bool onHeap() const { return kind_ == kHeap; }

 private:
  static constexpr std::uint8_t kMaxInline = 16;  // kind_ 0..16: inline text of that length
  static constexpr std::uint8_t kIpv6 = 0x40;     // bytes_: the address in network order
  static constexpr std::uint8_t kHeap = 0x80;     // bytes_: char* then std::uint32_t length

  const char* heapData() const;
  std::uint32_t heapSize() const;
  void release();
  void copyFrom(const SetValue& other);

  std::array<char, 16> bytes_{};
  std::uint8_t kind_ = 0;
};

class DistinctSet {
 public:
  struct Member {
    SetValue value;
    std::uint32_t last_seen_s = 0;  // unix seconds
  };
  using Members = boost::container::small_vector<Member, 2>;

  // SetOp semantics: touches `value` (last seen = now) and returns the number of live entries;
  // an empty value only counts. At `max_entries` the least recently seen entry makes room.
  SetResult touch(std::string_view value, std::uint32_t ttl_s, std::int64_t now_s,
                  std::size_t max_entries);
  // Live entries at now_s, without changing anything.
  std::uint32_t count(std::int64_t now_s) const;
  bool isLive(const Member& member, std::int64_t now_s) const;
  // Drops the expired entries.
  void prune(std::int64_t now_s);
  bool empty() const { return members_.empty(); }

  std::uint32_t ttlSeconds() const { return ttl_s_; }
  const Members& members() const { return members_; }
  // Rebuilds a set from its persisted form.
  static DistinctSet restore(std::uint32_t ttl_s, Members members);

 private:
  Members members_;
  std::uint32_t ttl_s_ = 0;  // from the latest touch; used to expire entries on load and view
};

}  // namespace saslguard::store
