// state_store.hpp — opens the state store that [state] and [redis] describe: the embedded one in
// state.dir (this host only), or the Redis store a fleet of instances shares. The daemon and the
// command-line tools open it here, so both backends work wherever the store is used.
#pragma once

#include <memory>
#include <string>

#include "common/result.hpp"
#include "config/settings.hpp"
#include "store/embedded_store.hpp"
#include "store/redis_store.hpp"

namespace saslguard::engine {

struct StateStore {
  std::unique_ptr<store::Store> store;
  store::EmbeddedStore* embedded = nullptr;  // exactly one of these two is set
  store::RedisStore* redis = nullptr;

  // Embedded: writes what is pending and closes the database. Redis: nothing is pending.
  Result<void> close();
  // "state in /var/lib/saslguard" or "state on Redis 127.0.0.1:6379" (for the ready line).
  std::string describe(const config::Settings& settings) const;
};

// kDaemon: the embedded store's flusher runs, the Redis store keeps its registry cache and
// subscribes to the registry channel. kTool: neither (a command on a stopped daemon, or on Redis).
enum class StoreUse { kDaemon, kTool };

// The Redis store's options from [redis]; reads the password files (their first line).
Result<store::RedisStoreOptions> redisStoreOptions(const config::Settings& settings,
                                                   StoreUse use = StoreUse::kDaemon);

// Does not contact Redis: a daemon starts while Redis is down (requests then get
// state.failure_action).
Result<StateStore> openStateStore(const config::Settings& settings, StoreUse use);

}  // namespace saslguard::engine
