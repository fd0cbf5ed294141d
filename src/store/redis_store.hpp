// redis_store.hpp — the Store on Redis, shared by every saslguard instance that points at it: a
// policy request is one EVALSHA of a Lua script (registry check, sliding-window counters and
// expiring distinct sets, all counts returned), atomic on the server, so parallel daemons count
// exactly. Registry changes are published on a channel named after the registry set and the
// database, and every store keeps a local cache of the marks it heard of. Key layout and
// operation: docs/redis.md.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/guarded.hpp"
#include "store/redis_client.hpp"
#include "store/redis_sentinel.hpp"
#include "store/registry_cache.hpp"
#include "store/store.hpp"

namespace saslguard::store {

class RedisReplyReader;
class ContextClients;

struct RedisStoreOptions {
  RedisOptions redis;
  // Every per-account key is "{<key_prefix>:<account>}:<what>": the braces are a Redis Cluster
  // hash tag, so one account's keys (one request's keys) live in one slot.
  std::string key_prefix = "saslguard";
  // Marked accounts are members of this set (Abusix compatibility: SMEMBERS lists them, SREM
  // unblocks, SADD blocks). It is the registry's truth; the per-account hash holds the details.
  std::string registry_set = "compromised_accts";
  std::uint32_t max_set_entries = 1024;  // per set; the least recently seen entry makes room
  std::uint32_t audit_entries = 200;     // per account, the newest kept
  // Registry changes (mark, clear, forgetSets) are acknowledged only once this many replicas
  // have them (WAIT), within wait_timeout; 0: once the primary has them.
  int wait_replicas = 0;
  std::chrono::milliseconds wait_timeout{1000};
  // Accounts known marked, kept locally (see registryCache()); 0: no cache and no subscription
  // to the registry channel (command-line tools).
  std::size_t registry_cache_entries = 0;
};

// The pub/sub channel of registry changes: "<registry_set>:db<database>".
std::string registryChannel(const RedisStoreOptions& options);

struct RegistryChannelStats {
  std::uint64_t subscriptions = 0;  // successful (re)subscriptions to the registry channel
  std::uint64_t messages = 0;       // mark/clear messages applied to the cache
  bool subscribed = false;          // listening right now
};

class RedisStore final : public Store {
 public:
  // Runs its own I/O thread for the blocking Store calls. Does not contact Redis: a daemon
  // starts (and fails open or closed per request) while Redis is down.
  static Result<std::unique_ptr<RedisStore>> open(RedisStoreOptions options);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  Result<BatchResult> execute(const Batch& batch, TimePoint now) override;
  // execute() for callers on an event loop: the same script, awaited instead of blocking a
  // thread. An addition to the Store interface, not part of it.
  // Every reply updates the registry cache (marked: added, not marked: dropped).
  boost::asio::awaitable<Result<BatchResult>> executeAsync(Batch batch, TimePoint now);
  // mark() and clear() for callers on an event loop.
  boost::asio::awaitable<Result<MarkOutcome>> markAsync(std::string account, Mark mark,
                                                        TimePoint now) override;
  boost::asio::awaitable<Result<bool>> clearAsync(std::string account, ClearInfo info,
                                                  TimePoint now) override;

  Result<MarkOutcome> mark(const std::string& account, const Mark& mark, TimePoint now) override;
  Result<bool> clear(const std::string& account, const ClearInfo& info, TimePoint now) override;
  Result<std::optional<Mark>> getMark(const std::string& account, TimePoint now) override;
  Result<std::vector<std::pair<std::string, Mark>>> listMarks(const std::string& after,
                                                              std::size_t limit,
                                                              TimePoint now) override;
  Result<AccountView> view(const std::string& account, TimePoint now) override;
  Result<std::size_t> forgetSets(const std::string& account, std::string_view name_prefix,
                                 TimePoint now) override;
  // Nothing is pending: every call has reached Redis before it returns. Durability is Redis'
  // own (appendonly, replicas); see docs/redis.md.
  Result<void> flush() override { return {}; }
  // Store's awaited forms not covered by markAsync/clearAsync above (the admin API, the control
  // socket): a frozen Redis holds no event loop.
  boost::asio::awaitable<Result<std::optional<Mark>>> getMarkAsync(std::string account,
                                                                   TimePoint now) override;
  boost::asio::awaitable<Result<std::size_t>> forgetSetsAsync(std::string account,
                                                              std::string name_prefix,
                                                              TimePoint now) override;
  boost::asio::awaitable<Result<std::vector<std::pair<std::string, Mark>>>> listMarksAsync(
      std::string after, std::size_t limit, TimePoint now) override;
  boost::asio::awaitable<Result<AccountView>> viewAsync(std::string account,
                                                        TimePoint now) override;
  StoreStats stats() override;

  // The client of the store's own I/O thread (blocking calls, the registry channel's resync).
  // Awaited calls from another io_context (a policy worker's) use a client of that context,
  // made at its first use: the request's round trip stays on the worker's thread.
  RedisClient& client() { return *client_; }
  // The marks this store knows of without asking Redis: what every script reply said, and what
  // the registry channel announced (saslguard's own mark and clear, from any instance). A
  // `redis-cli SREM` is seen at the account's next request. Used when Redis cannot be reached.
  const RegistryCache& registryCache() const { return cache_; }
  RegistryChannelStats registryChannelStats() const;
  // "{saslguard:alice}:mark" and the like; for tests and docs.
  std::string accountKey(const std::string& account, std::string_view what) const;

  struct Script {
    const char* body;
    std::mutex mutex;
    std::string sha;  // empty until SCRIPT LOAD told it (and again after NOSCRIPT)
  };

 private:
  explicit RedisStore(RedisStoreOptions options);

  // The client bound to the io_context `executor` runs on (created there at its first use), or
  // client_ when that is io_ or not an io_context.
  RedisClient& clientFor(const boost::asio::any_io_executor& executor);

  // `durable`: a registry change, followed by WAIT when wait_replicas is set.
  boost::asio::awaitable<Result<RedisReply>> runScript(RedisClient& client, Script& script,
                                                       std::vector<std::string> keys,
                                                       std::vector<std::string> args,
                                                       bool durable = false);
  template <class T>
  Result<T> blockOn(boost::asio::awaitable<Result<T>> task);

  boost::asio::awaitable<Result<std::size_t>> forgetSetsAsync(std::string account,
                                                              std::string name_prefix);

  RedisStoreOptions options_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<RedisClient> client_;
  // Keys this store's clients in other io_contexts (ids are never reused, addresses may be).
  const std::uint64_t id_;
  struct ContextClient {
    std::weak_ptr<RedisClient> client;  // owned by the context, gone with it
    ContextClients* owner;              // valid while `client` is
  };
  Guarded<std::vector<ContextClient>> context_clients_;
  Script execute_script_;
  Script mark_script_;
  Script clear_script_;
  Script forget_sets_script_;
  std::atomic<std::uint64_t> errors_{0};

  // The registry channel: one subscribed connection, reconnected with backoff; runs on io_.
  boost::asio::awaitable<void> watchRegistry();
  boost::asio::awaitable<Result<void>> subscribeRegistry(RedisReplyReader& reader);
  boost::asio::awaitable<void> resyncCache();
  void applyRegistryMessage(const RedisReply& message);
  RegistryCache cache_;
  SentinelDiscovery discovery_;
  boost::asio::ip::tcp::socket channel_socket_;
  boost::asio::steady_timer channel_pause_;
  bool stopping_ = false;  // on io_ only
  std::atomic<std::uint64_t> channel_subscriptions_{0};
  std::atomic<std::uint64_t> channel_messages_{0};
  std::atomic<bool> channel_subscribed_{false};
};

}  // namespace saslguard::store
