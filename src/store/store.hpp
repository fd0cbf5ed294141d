// store.hpp — the state interface every detector uses: the compromise registry, counters over
// sliding windows and distinct-value sets with per-entry expiry, all per account. A policy request
// hands the store one Batch (registry check + every counter and set operation), so a networked
// implementation (Redis) serves the whole request in one round trip; the embedded one is local.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace saslguard::store {

// A compromise mark: why the account is blocked, kept until an operator clears it (or it expires).
struct Mark {
  std::string detector;  // "reputation", "geo", "quota", "denylist", "operator"
  std::string reason;    // one line for humans
  std::string evidence;  // a JSON object with the detector's details (zone, code, ip, ...)
  std::string action;    // REJECT | DEFER | HOLD | DUNNO, the answer while marked
  TimePoint first_seen{};
  TimePoint last_seen{};
  std::uint64_t hits = 0;            // requests refused because of this mark
  std::optional<TimePoint> expires;  // none: until cleared
};

// Who cleared a mark and why; kept in the audit trail.
struct ClearInfo {
  std::string by;
  std::string reason;
};

struct AuditEntry {
  TimePoint at{};
  std::string account;
  std::string event;  // "mark" | "clear" | "expire"
  std::string by;     // detector or operator
  std::string reason;
  std::string evidence;
};

// Adds `amount` to the counter `name` and returns the window's total. With `add_only_below`,
// the amount is added only when the new total stays below that limit (a rejected message does
// not count); the returned total is then what it would have been.
struct CounterOp {
  std::string name;  // e.g. "quota:86400"
  std::uint32_t window_s = 86400;
  std::uint32_t buckets = 100;  // granularity = window_s / buckets
  std::uint64_t amount = 0;     // 0 reads without changing anything
  std::optional<std::uint64_t> add_only_below;
  // Non-zero: the ops of the batch with the same group are added all or none — each only when
  // every op of the group stays below its add_only_below (the quota detector's windows: a
  // message one window rejects is added to none of them).
  std::uint8_t all_or_none_group = 0;
};
struct CounterResult {
  std::uint64_t total = 0;  // window total including the amount (whether or not it was added)
  bool added = false;
};

// Touches `value` in the set `name` (last seen = now) and returns how many live entries the set
// has; entries expire `ttl_s` after they were last seen. An empty value only counts.
struct SetOp {
  std::string name;  // e.g. "geo:ips", "geo:countries"
  std::string value;
  std::uint32_t ttl_s = 3600;
};
struct SetResult {
  std::uint32_t count = 0;
  bool inserted = false;  // the value was not a live member before
};

struct Batch {
  std::string account;
  bool check_registry = true;  // a marked account short-circuits: no counter or set changes
  std::vector<CounterOp> counters;
  std::vector<SetOp> sets;
};

struct BatchResult {
  std::optional<Mark> mark;  // set when the account is marked (and then nothing else ran)
  std::vector<CounterResult> counters;  // one per CounterOp, in order
  std::vector<SetResult> sets;          // one per SetOp, in order
};

struct MarkOutcome {
  bool is_new = false;  // false: the account was already marked; last_seen/hits updated
  Mark mark;            // the stored mark after the call
};

struct SetEntry {
  std::string value;
  TimePoint last_seen{};
};

// What `accounts show` and the API print about one account.
struct AccountView {
  std::string account;
  std::optional<Mark> mark;
  struct Counter {
    std::string name;
    std::uint32_t window_s = 0;
    std::uint64_t total = 0;
  };
  std::vector<Counter> counters;
  struct Set {
    std::string name;
    std::vector<SetEntry> entries;
  };
  std::vector<Set> sets;
  std::vector<AuditEntry> audit;  // newest last
};

struct StoreStats {
  std::uint64_t accounts = 0;  // tracked in memory
  std::uint64_t marks = 0;
  std::uint64_t evicted = 0;  // accounts dropped because of the max_accounts cap
  std::uint64_t flushes = 0;  // group commits written
  std::uint64_t flush_errors = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The hot path: one call per policy request.
  virtual Result<BatchResult> execute(const Batch& batch, TimePoint now) = 0;

  // Registry changes are durable before these return (operators and Postfix rely on them).
  virtual Result<MarkOutcome> mark(const std::string& account, const Mark& mark, TimePoint now) = 0;
  // Returns false when the account was not marked.
  virtual Result<bool> clear(const std::string& account, const ClearInfo& info, TimePoint now) = 0;

  virtual Result<std::optional<Mark>> getMark(const std::string& account, TimePoint now) = 0;
  // Marked accounts in account order, starting after `after` (paging), at most `limit`.
  virtual Result<std::vector<std::pair<std::string, Mark>>> listMarks(const std::string& after,
                                                                      std::size_t limit,
                                                                      TimePoint now) = 0;
  virtual Result<AccountView> view(const std::string& account, TimePoint now) = 0;
  // Drops every set of the account whose name starts with `name_prefix` ("geo:" is geo's state:
  // what an operator's "unblock" resets), durable before it returns. Returns how many sets were
  // dropped. Counters and the mark are untouched.
  virtual Result<std::size_t> forgetSets(const std::string& account, std::string_view name_prefix,
                                         TimePoint now) = 0;

  // The registry calls above for callers on an event loop (the admin API, the control socket):
  // awaited, so a store that waits on the network (Redis, frozen or failing over) holds no loop
  // while it does. These defaults complete at once with the blocking call: the embedded store
  // never waits on anything but its own disk. The Redis store overrides them.
  virtual boost::asio::awaitable<Result<MarkOutcome>> markAsync(std::string account, Mark mark,
                                                                TimePoint now) {
    co_return this->mark(account, mark, now);
  }
  virtual boost::asio::awaitable<Result<bool>> clearAsync(std::string account, ClearInfo info,
                                                          TimePoint now) {
    co_return clear(account, info, now);
  }
  virtual boost::asio::awaitable<Result<std::optional<Mark>>> getMarkAsync(std::string account,
                                                                           TimePoint now) {
    co_return getMark(account, now);
  }
  virtual boost::asio::awaitable<Result<std::size_t>> forgetSetsAsync(std::string account,
                                                                      std::string name_prefix,
                                                                      TimePoint now) {
    co_return forgetSets(account, name_prefix, now);
  }
  virtual boost::asio::awaitable<Result<std::vector<std::pair<std::string, Mark>>>> listMarksAsync(
      std::string after, std::size_t limit, TimePoint now) {
    co_return listMarks(after, limit, now);
  }
  virtual boost::asio::awaitable<Result<AccountView>> viewAsync(std::string account,
                                                                TimePoint now) {
    co_return view(account, now);
  }

  // Writes everything pending (counters, sets) now; called on shutdown and by tests.
  virtual Result<void> flush() = 0;
  virtual StoreStats stats() = 0;
};

}  // namespace saslguard::store
