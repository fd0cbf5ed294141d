// distinct_set.cpp — see distinct_set.hpp. Expiry happens on touch (and when the flusher sweeps
// or the store loads), so an idle set costs nothing until someone looks at it.
#include "store/distinct_set.hpp"

#include <algorithm>

namespace saslguard::store {
namespace {

std::uint32_t toSeconds(std::int64_t now_s) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(now_s, 0, UINT32_MAX));
}

}  // namespace

bool DistinctSet::isLive(const Member& member, std::int64_t now_s) const {
  return now_s - std::int64_t{member.last_seen_s} < std::int64_t{ttl_s_};
}

SetResult DistinctSet::touch(std::string_view value, std::uint32_t ttl_s, std::int64_t now_s,
                             std::size_t max_entries) {
  ttl_s_ = ttl_s;
  prune(now_s);
  if (value.empty()) return SetResult{static_cast<std::uint32_t>(members_.size()), false};

  for (auto& member : members_) {
    if (member.value == value) {
      member.last_seen_s = std::max(member.last_seen_s, toSeconds(now_s));
      return SetResult{static_cast<std::uint32_t>(members_.size()), false};
    }
  }
  if (max_entries > 0 && members_.size() >= max_entries) {
    auto oldest = std::min_element(members_.begin(), members_.end(),
                                   [](auto& a, auto& b) { return a.last_seen_s < b.last_seen_s; });
    oldest->value.assign(value);
    oldest->last_seen_s = toSeconds(now_s);
  } else {
    members_.push_back(Member{std::string(value), toSeconds(now_s)});
  }
  return SetResult{static_cast<std::uint32_t>(members_.size()), true};
}

std::uint32_t DistinctSet::count(std::int64_t now_s) const {
  std::uint32_t live = 0;
  for (const auto& member : members_) live += isLive(member, now_s) ? 1 : 0;
  return live;
}

void DistinctSet::prune(std::int64_t now_s) {
  members_.erase(std::remove_if(members_.begin(), members_.end(),
                                [&](const Member& member) { return !isLive(member, now_s); }),
                 members_.end());
}

DistinctSet DistinctSet::restore(std::uint32_t ttl_s, Members members) {
  DistinctSet set;
  set.ttl_s_ = ttl_s;
  set.members_ = std::move(members);
  return set;
}

}  // namespace saslguard::store
