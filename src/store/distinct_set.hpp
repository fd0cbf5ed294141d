// distinct_set.hpp — a set of distinct values (client IPs, countries) in which every entry
// expires ttl_s after it was last seen. Kept as a small vector: the sets detectors use hold a
// handful of entries (the first lives inside the object), and a cap keeps a hostile account
// from growing one without bound.
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace saslguard::store {

class DistinctSet {
 public:
  struct Member {
    std::string value;
    std::uint32_t last_seen_s = 0;  // unix seconds
  };
  using Members = boost::container::small_vector<Member, 1>;

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
