// account_state.cpp — see account_state.hpp. Record layout (version 1, integers little-endian):
//   u8 version | u32 last_active_s | u8 flags (1: mark activity follows) | [i64 first_seen_ms,
//   i64 last_seen_ms, u64 hits] | varint #counters { str name, u32 window_s, u32 granularity_s,
//   varint #buckets { u32 index, u32 count } } | varint #sets { str name, u32 ttl_s,
//   varint #entries { str value, u32 last_seen_s } }
#include "store/account_state.hpp"

#include <algorithm>

#include "store/codec.hpp"

namespace saslguard::store {

std::optional<std::uint16_t> NameTable::find(std::string_view name) const {
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<std::uint16_t>(i);
  }
  return std::nullopt;
}

std::optional<std::uint16_t> NameTable::intern(std::string_view name) {
  if (auto id = find(name)) return id;
  if (names_.size() >= kMaxNames) return std::nullopt;
  names_.emplace_back(name);
  return static_cast<std::uint16_t>(names_.size() - 1);
}

NamedWindow* AccountState::findCounter(std::uint16_t name) {
  for (auto& counter : counters) {
    if (counter.name == name) return &counter;
  }
  return nullptr;
}

NamedSet* AccountState::findSet(std::uint16_t name) {
  for (auto& set : sets) {
    if (set.name == name) return &set;
  }
  return nullptr;
}

void AccountState::prune(std::int64_t now_s) {
  for (auto& counter : counters) counter.window.prune(now_s);
  counters.erase(std::remove_if(counters.begin(), counters.end(),
                                [](const NamedWindow& c) { return c.window.empty(); }),
                 counters.end());
  for (auto& set : sets) set.set.prune(now_s);
  sets.erase(
      std::remove_if(sets.begin(), sets.end(), [](const NamedSet& s) { return s.set.empty(); }),
      sets.end());
}

void encodeAccount(const AccountState& state, const NameTable& names, std::string& out) {
  codec::Writer w(out);
  w.u8(codec::kFormatVersion);
  w.u32(state.last_active_s);
  w.u8(state.mark ? 1 : 0);
  if (state.mark) {
    w.i64(toUnixMs(state.mark->first_seen));
    w.i64(toUnixMs(state.mark->last_seen));
    w.u64(state.mark->hits);
  }
  w.varint(state.counters.size());
  for (const auto& counter : state.counters) {
    w.str(names.name(counter.name));
    w.u32(counter.window.windowSeconds());
    w.u32(counter.window.granularitySeconds());
    w.varint(counter.window.buckets().size());
    for (const auto& bucket : counter.window.buckets()) {
      w.u32(bucket.index);
      w.u32(bucket.count);
    }
  }
  w.varint(state.sets.size());
  for (const auto& set : state.sets) {
    w.str(names.name(set.name));
    w.u32(set.set.ttlSeconds());
    w.varint(set.set.members().size());
    SetValue::TextBuffer buffer;
    for (const auto& member : set.set.members()) {
      w.str(member.value.view(buffer));
      w.u32(member.last_seen_s);
    }
  }
}

Result<DecodedAccount> decodeAccount(std::string_view bytes, NameTable& names) {
  codec::Reader r(bytes);
  DecodedAccount decoded;
  AccountState& state = decoded.state;
  std::uint8_t version = 0;
  std::uint8_t flags = 0;
  if (!r.u8(version)) return fail("empty account record");
  if (version != codec::kFormatVersion) {
    return fail("account record of unknown format version " + std::to_string(version));
  }
  if (!r.u32(state.last_active_s) || !r.u8(flags)) return fail("truncated account record");
  if ((flags & 1) != 0) {
    MarkActivity activity;
    if (!r.i64(activity.first_seen_ms) || !r.i64(activity.last_seen_ms) || !r.u64(activity.hits)) {
      return fail("truncated account record");
    }
    decoded.mark_activity = activity;
  }

  std::uint64_t count = 0;
  if (!r.varint(count) || count > bytes.size()) return fail("truncated account record");
  state.counters.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string_view name;
    std::uint32_t window_s = 0;
    std::uint32_t granularity_s = 0;
    std::uint64_t bucket_count = 0;
    if (!r.str(name) || !r.u32(window_s) || !r.u32(granularity_s) || !r.varint(bucket_count) ||
        bucket_count > bytes.size()) {
      return fail("truncated account record");
    }
    SlidingWindow::Buckets buckets(bucket_count);
    for (auto& bucket : buckets) {
      if (!r.u32(bucket.index) || !r.u32(bucket.count)) return fail("truncated account record");
    }
    auto id = names.intern(name);
    if (!id) return fail("too many distinct counter and set names");
    state.counters.push_back(
        NamedWindow{*id, SlidingWindow::restore(window_s, granularity_s, std::move(buckets))});
  }

  if (!r.varint(count) || count > bytes.size()) return fail("truncated account record");
  state.sets.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string_view name;
    std::uint32_t ttl_s = 0;
    std::uint64_t entry_count = 0;
    if (!r.str(name) || !r.u32(ttl_s) || !r.varint(entry_count) || entry_count > bytes.size()) {
      return fail("truncated account record");
    }
    DistinctSet::Members members(entry_count);
    for (auto& member : members) {
      std::string_view value;
      if (!r.str(value) || !r.u32(member.last_seen_s)) return fail("truncated account record");
      member.value = SetValue(value);
    }
    auto id = names.intern(name);
    if (!id) return fail("too many distinct counter and set names");
    state.sets.push_back(NamedSet{*id, DistinctSet::restore(ttl_s, std::move(members))});
  }
  if (!r.atEnd()) return fail("trailing bytes in account record");
  return decoded;
}

}  // namespace saslguard::store
