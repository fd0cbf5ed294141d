// state_store.cpp — see state_store.hpp. Passwords come from files (their first line) and never
// reach a log line or an error message.
#include "engine/state_store.hpp"

#include <filesystem>

#include "common/files.hpp"

namespace saslguard::engine {

Result<void> StateStore::close() {
  if (embedded != nullptr) return embedded->close();
  return {};
}

std::string StateStore::describe(const config::Settings& settings) const {
  if (redis == nullptr) return "state in " + settings.state.dir;
  if (!settings.redis.sentinels.empty()) {
    return "state on Redis (Sentinel master " + settings.redis.master_name + ")";
  }
  return "state on Redis " + settings.redis.server;
}

Result<store::RedisStoreOptions> redisStoreOptions(const config::Settings& settings, StoreUse use) {
  const auto& redis = settings.redis;
  store::RedisStoreOptions options;
  if (redis.sentinels.empty()) {
    auto server = store::parseRedisEndpoint(redis.server, 6379);
    if (!server) return fail("redis.server: " + server.error().message);
    options.redis.server = std::move(*server);
  }
  for (const auto& text : redis.sentinels) {
    auto sentinel = store::parseRedisEndpoint(text, 26379);
    if (!sentinel) return fail("redis.sentinels: " + sentinel.error().message);
    options.redis.sentinels.push_back(std::move(*sentinel));
  }
  options.redis.master_name = redis.master_name;
  options.redis.sentinel_username = redis.sentinel_username;
  if (!redis.sentinel_password_file.empty()) {
    auto password = readFirstLine(redis.sentinel_password_file, "redis.sentinel_password_file");
    if (!password) return tl::unexpected(password.error());
    options.redis.sentinel_password = std::move(*password);
  }
  options.redis.sentinel_timeout = std::chrono::milliseconds(redis.sentinel_timeout_ms);
  options.redis.username = redis.username;
  if (!redis.password_file.empty()) {
    auto password = readFirstLine(redis.password_file, "redis.password_file");
    if (!password) return tl::unexpected(password.error());
    options.redis.password = std::move(*password);
  }
  if (!options.redis.username.empty() && options.redis.password.empty()) {
    return fail("redis.username is set but no password (redis.password_file)");
  }
  options.redis.database = redis.database;
  options.redis.pool_size = static_cast<std::size_t>(redis.pool_size);
  options.redis.connect_timeout = std::chrono::milliseconds(redis.connect_timeout_ms);
  options.redis.command_timeout = std::chrono::milliseconds(redis.command_timeout_ms);
  options.redis.reconnect_min = std::chrono::milliseconds(redis.reconnect_min_ms);
  options.redis.reconnect_max = std::chrono::milliseconds(redis.reconnect_max_ms);
  options.redis.max_in_flight = static_cast<std::size_t>(redis.max_in_flight);
  options.key_prefix = redis.key_prefix;
  options.registry_set = redis.registry_set;
  options.max_set_entries = static_cast<std::uint32_t>(redis.max_set_entries);
  options.audit_entries = static_cast<std::uint32_t>(redis.audit_entries);
  options.wait_replicas = redis.wait_replicas;
  options.wait_timeout = std::chrono::milliseconds(redis.wait_timeout_ms);
  options.registry_cache_entries =
      use == StoreUse::kDaemon ? static_cast<std::size_t>(redis.registry_cache_entries) : 0;
  return options;
}

Result<StateStore> openStateStore(const config::Settings& settings, StoreUse use) {
  StateStore opened;
  if (settings.state.backend == "redis") {
    auto options = redisStoreOptions(settings, use);
    if (!options) return tl::unexpected(options.error());
    // The control socket and the default event log still live in state.dir.
    if (use == StoreUse::kDaemon) {
      std::error_code error;
      std::filesystem::create_directories(settings.state.dir, error);
      if (error)
        return fail("cannot create state.dir " + settings.state.dir + ": " + error.message());
    }
    auto store = store::RedisStore::open(std::move(*options));
    if (!store) return tl::unexpected(store.error());
    opened.redis = store->get();
    opened.store = std::move(*store);
    return opened;
  }
  store::EmbeddedStoreOptions options;
  options.dir = settings.state.dir;
  options.start_flusher = use == StoreUse::kDaemon;
  options.flush_interval_ms = settings.state.flush_interval_ms;
  options.max_accounts = settings.state.max_accounts;
  options.idle_expiry_s = settings.state.idle_expiry_s;
  options.map_size_mb = settings.state.lmdb_map_size_mb;
  auto store = store::EmbeddedStore::open(options);
  if (!store) return tl::unexpected(store.error());
  opened.embedded = store->get();
  opened.store = std::move(*store);
  return opened;
}

}  // namespace saslguard::engine
