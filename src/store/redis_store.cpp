// redis_store.cpp — see redis_store.hpp. The Lua scripts below carry the semantics of the
// embedded store (sliding_window.cpp, distinct_set.cpp, the registry) so both stores answer the
// same batch the same way; time always comes from the caller (`now`), never from the server.
#include "store/redis_store.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <map>

#include "store/redis_wire.hpp"
#include "store/time_units.hpp"

namespace saslguard::store {
namespace asio = boost::asio;

// g++ 12 flags Asio's awaitable frame allocator (its own operator new/delete pair) as
// mismatched once a coroutine is inlined enough; a known false positive (GCC bug 109224).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {

// Shared by the registry scripts. KEYS[1] the account's mark hash, KEYS[2] the registry set,
// KEYS[3] the account's audit list; ARGV[1] now (unix ms), ARGV[2] the account, ARGV[3] how
// many audit entries to keep, the last ARGV the registry channel (registryChannel()). Every
// change is published there ("mark <action> <account>", "clear <account>"): the other
// instances' registry caches.
constexpr const char kRegistryPrelude[] = R"lua(
local now_ms = tonumber(ARGV[1])
local account = ARGV[2]
local audit_cap = tonumber(ARGV[3])
local channel = ARGV[#ARGV]

local function announce(message)
  redis.call('PUBLISH', channel, message)
end

local function audit(event, by, reason, evidence)
  redis.call('RPUSH', KEYS[3], cjson.encode({at = ARGV[1], event = event, by = by,
                                             reason = reason, evidence = evidence}))
  redis.call('LTRIM', KEYS[3], -audit_cap, -1)
end

local function expired(m)
  return m.expires ~= nil and m.expires ~= '' and tonumber(m.expires) <= now_ms
end

-- The live mark as a table, or nil. The registry set is the truth: a hash whose account left the
-- set was cleared by an operator (SREM), a member without a hash was blocked by one (SADD).
local function liveMark()
  local listed = redis.call('SISMEMBER', KEYS[2], account) == 1
  local fields = redis.call('HGETALL', KEYS[1])
  if #fields == 0 then
    if listed then
      return {detector = 'operator', reason = 'listed in ' .. KEYS[2], evidence = '{}',
              action = 'REJECT', first_seen = '', last_seen = '', expires = ''}
    end
    return nil
  end
  local m = {}
  for i = 1, #fields, 2 do m[fields[i]] = fields[i + 1] end
  if not listed then
    redis.call('DEL', KEYS[1])
    audit('clear', KEYS[2], 'removed from ' .. KEYS[2], '')
    announce('clear ' .. account)
    return nil
  end
  if expired(m) then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], account)
    audit('expire', m.detector or '', 'mark expired', m.evidence or '')
    announce('clear ' .. account)
    return nil
  end
  return m
end

local function markReply(flag, m)
  return {flag, m.detector or '', m.reason or '', m.evidence or '', m.action or '',
          m.first_seen or '', m.last_seen or '', m.hits or '0', m.expires or ''}
end
)lua";

// One policy request. KEYS[4] the account's hash of counter and set names (-> window_s or
// ttl_s; for view and forgetSets), KEYS[5..] the counters' keys, then the sets' keys. ARGV[4] check
// the registry (1/0), ARGV[5] counters, ARGV[6] sets, ARGV[7] max set entries, then 6 values per
// counter (name, window_s, buckets, amount, add_only_below or '', group) and 3 per set (name,
// value, ttl_s). Returns {1, mark...} for a marked account, else {0, total, added, ..., count,
// inserted, ...}.
constexpr const char kExecuteBody[] = R"lua(
if ARGV[4] == '1' then
  local m = liveMark()
  if m then
    if m.hits ~= nil then  -- a stored mark, not just a member of the registry set
      m.hits = tostring(redis.call('HINCRBY', KEYS[1], 'hits', 1))
      if tonumber(m.last_seen) < now_ms then
        redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
        m.last_seen = ARGV[1]
      end
    end
    return markReply(1, m)
  end
end

local now_s = math.floor(now_ms / 1000)
local counters = tonumber(ARGV[5])
local sets = tonumber(ARGV[6])
local max_entries = tonumber(ARGV[7])
local names_ttl_ms = 0

-- sliding_window.cpp: buckets of g = window / buckets seconds, a count stays in the total while
-- the current bucket index is below its index + span. Prunes (and reshapes after a settings
-- change); returns granularity, current index, live total, and whether the hash is new (empty).
local function loadWindow(key, window, buckets)
  local g = math.max(1, math.floor(window / math.max(1, buckets)))
  local span = math.floor((window + g - 1) / g)
  local index = math.floor(math.max(now_s, 0) / g)
  local oldest = index - span + 1
  local flat = redis.call('HGETALL', key)
  local sum = 0
  if #flat == 0 then return g, index, 0, true end
  local stored_g, stored_w = nil, nil
  local counts = {}
  for i = 1, #flat, 2 do
    local field = flat[i]
    if field == 'g' then stored_g = tonumber(flat[i + 1])
    elseif field == 'w' then stored_w = tonumber(flat[i + 1])
    else counts[tonumber(field)] = tonumber(flat[i + 1]) end
  end
  if stored_g ~= g or stored_w ~= window then
    local moved = {}
    for b, c in pairs(counts) do
      local nb = math.floor(b * (stored_g or g) / g)
      moved[nb] = (moved[nb] or 0) + c
    end
    redis.call('DEL', key)
    local args = {'g', g, 'w', window}
    for b, c in pairs(moved) do
      args[#args + 1] = string.format('%d', b)
      args[#args + 1] = string.format('%d', c)
    end
    redis.call('HSET', key, unpack(args))
    counts = moved
  end
  local stale = {}
  for b, c in pairs(counts) do
    if b < oldest then stale[#stale + 1] = string.format('%d', b) else sum = sum + c end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return g, index, sum, false
end

-- Every redis.call costs more than the command it runs (arguments and the reply cross into
-- and out of Lua), so each request makes as few as it can: a window read once even when its
-- group is checked first, and the names hash written once at the end.
local loaded = {}
local function window(op)
  local w = loaded[op.key]
  if not w or w.window ~= op.window or w.buckets ~= op.buckets then
    local g, index, sum, fresh = loadWindow(op.key, op.window, op.buckets)
    w = {g = g, index = index, sum = sum, fresh = fresh, window = op.window, buckets = op.buckets}
    loaded[op.key] = w
  end
  return w
end

local ops = {}
for i = 1, counters do
  local a = 7 + (i - 1) * 6
  ops[i] = {key = KEYS[4 + i], name = ARGV[a + 1], window = tonumber(ARGV[a + 2]),
            buckets = tonumber(ARGV[a + 3]), amount = tonumber(ARGV[a + 4]),
            below = tonumber(ARGV[a + 5]), group = tonumber(ARGV[a + 6])}
end
-- A group is added all or none: blocked when one of its ops would reach its limit.
local blocked = {}
for _, op in ipairs(ops) do
  if op.group > 0 and op.group <= 63 and op.below then
    if window(op).sum + op.amount >= op.below then blocked[op.group] = true end
  end
end

local names = {}
local results = {0}
for _, op in ipairs(ops) do
  local w = window(op)
  local total = w.sum + op.amount
  local below = op.below
  if op.group > 0 and op.group <= 63 and blocked[op.group] then below = 0 end
  local added = 0
  if op.amount > 0 and not (below and total >= below) then
    local bucket = string.format('%d', w.index)
    if w.fresh then
      redis.call('HSET', op.key, 'g', w.g, 'w', op.window, bucket, op.amount)
    else
      redis.call('HINCRBY', op.key, bucket, op.amount)
    end
    loaded[op.key] = nil  -- the same counter twice in a batch reads its own addition
    local ttl_ms = (op.window + w.g) * 1000
    redis.call('PEXPIRE', op.key, ttl_ms)
    names[#names + 1] = 'c:' .. op.name
    names[#names + 1] = op.window
    names_ttl_ms = math.max(names_ttl_ms, ttl_ms)
    added = 1
  end
  results[#results + 1] = total
  results[#results + 1] = added
end

-- distinct_set.cpp: members scored by last seen (unix s), live while now - last seen < ttl; a
-- full set gives its least recently seen member's place to a new value.
local first_set = 7 + counters * 6
for j = 1, sets do
  local a = first_set + (j - 1) * 3
  local key = KEYS[4 + counters + j]
  local name, value, ttl = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_s - ttl)
  local count = redis.call('ZCARD', key)
  local inserted = 0
  if value ~= '' then
    if max_entries > 0 and count >= max_entries then
      if not redis.call('ZSCORE', key, value) then
        redis.call('ZPOPMIN', key, 1)
        inserted = 1
      end
      redis.call('ZADD', key, 'GT', now_s, value)
    else
      -- ZADD answers how many members it added: 1 for a new value, 0 for one it refreshed.
      inserted = redis.call('ZADD', key, 'GT', now_s, value)
      count = count + inserted
    end
    redis.call('PEXPIRE', key, ttl * 1000)
    names[#names + 1] = 's:' .. name
    names[#names + 1] = ttl
    names_ttl_ms = math.max(names_ttl_ms, ttl * 1000)
  end
  results[#results + 1] = count
  results[#results + 1] = inserted
end

if #names > 0 then
  redis.call('HSET', KEYS[4], unpack(names))
  if names_ttl_ms > 0 and redis.call('PTTL', KEYS[4]) < names_ttl_ms then
    redis.call('PEXPIRE', KEYS[4], names_ttl_ms)
  end
end
return results
)lua";

// mark(). ARGV[4..11]: detector, reason, evidence, action, first_seen, last_seen, hits, expires
// ('' none). Returns {is_new, mark...}.
constexpr const char kMarkBody[] = R"lua(
local m = liveMark()
local is_new = 0
if m and m.hits ~= nil then
  m.hits = tostring(tonumber(m.hits) + 1)
  if tonumber(m.last_seen) < now_ms then m.last_seen = ARGV[1] end
  -- The later expiry wins; none (until cleared) beats any.
  if m.expires == '' or ARGV[11] == '' then
    m.expires = ''
  elseif tonumber(ARGV[11]) > tonumber(m.expires) then
    m.expires = ARGV[11]
  end
  redis.call('HSET', KEYS[1], 'hits', m.hits, 'last_seen', m.last_seen, 'expires', m.expires)
else
  is_new = 1
  m = {detector = ARGV[4], reason = ARGV[5], evidence = ARGV[6], action = ARGV[7],
       first_seen = ARGV[8], last_seen = ARGV[9], hits = ARGV[10], expires = ARGV[11]}
  redis.call('HSET', KEYS[1], 'detector', m.detector, 'reason', m.reason, 'evidence', m.evidence,
             'action', m.action, 'first_seen', m.first_seen, 'last_seen', m.last_seen,
             'hits', m.hits, 'expires', m.expires)
  redis.call('SADD', KEYS[2], account)
end
audit('mark', ARGV[4], ARGV[5], ARGV[6])
announce('mark ' .. (m.action or '') .. ' ' .. account)
return markReply(is_new, m)
)lua";

// clear(). ARGV[4] by, ARGV[5] reason. Returns 1 when a live mark was cleared.
constexpr const char kClearBody[] = R"lua(
local listed = redis.call('SISMEMBER', KEYS[2], account) == 1
local fields = redis.call('HGETALL', KEYS[1])
if not listed and #fields == 0 then return 0 end
local m = {}
for i = 1, #fields, 2 do m[fields[i]] = fields[i + 1] end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], account)
announce('clear ' .. account)
if not listed then
  audit('clear', KEYS[2], 'removed from ' .. KEYS[2], '')
  return 0
end
if expired(m) then
  audit('expire', m.detector or '', 'mark expired', m.evidence or '')
  return 0
end
audit('clear', ARGV[4], ARGV[5], '')
return 1
)lua";

// forgetSets(). KEYS[1] the names hash; ARGV[1] the account's set key prefix, ARGV[2] the name
// prefix. Returns how many sets existed and were dropped.
constexpr const char kForgetSetsScript[] = R"lua(
local dropped = 0
for _, entry in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(entry, 1, 2) == 's:' and string.sub(entry, 3, 2 + #ARGV[2]) == ARGV[2] then
    dropped = dropped + redis.call('DEL', ARGV[1] .. string.sub(entry, 3))
    redis.call('HDEL', KEYS[1], entry)
  end
end
return dropped
)lua";

const std::string kExecuteScript = std::string(kRegistryPrelude) + kExecuteBody;
const std::string kMarkScript = std::string(kRegistryPrelude) + kMarkBody;
const std::string kClearScript = std::string(kRegistryPrelude) + kClearBody;

std::string decimal(std::int64_t value) {
  return std::to_string(value);
}

std::optional<std::int64_t> parseInteger(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Names become part of keys; a '}' would end the hash tag early (and let two names collide).
Result<void> checkName(std::string_view name) {
  if (name.empty() || name.find('}') != std::string_view::npos) {
    return fail("counter or set name '" + std::string(name) + "' is empty or contains '}'");
  }
  return {};
}

Result<void> checkAccount(const std::string& account) {
  if (account.empty()) return fail("empty account name");
  return {};
}

// {flag, detector, reason, evidence, action, first_seen, last_seen, hits, expires} from a script.
Result<Mark> decodeMark(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 9) {
    return fail("unexpected mark reply from Redis: " + reply.describe());
  }
  const auto& e = reply.elements;
  Mark mark;
  mark.detector = e[1].text;
  mark.reason = e[2].text;
  mark.evidence = e[3].text;
  mark.action = e[4].text;
  if (auto ms = parseInteger(e[5].text)) mark.first_seen = fromUnixMs(*ms);
  if (auto ms = parseInteger(e[6].text)) mark.last_seen = fromUnixMs(*ms);
  if (auto hits = parseInteger(e[7].text)) mark.hits = static_cast<std::uint64_t>(*hits);
  if (auto ms = parseInteger(e[8].text)) mark.expires = fromUnixMs(*ms);
  return mark;
}

// A mark hash (HGETALL's flat field/value list) as a Mark.
Mark markFromHash(const RedisReply& hash) {
  Mark mark;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const auto& field = hash.elements[i].text;
    const auto& value = hash.elements[i + 1].text;
    if (field == "detector") mark.detector = value;
    if (field == "reason") mark.reason = value;
    if (field == "evidence") mark.evidence = value;
    if (field == "action") mark.action = value;
    if (field == "first_seen") {
      if (auto ms = parseInteger(value)) mark.first_seen = fromUnixMs(*ms);
    }
    if (field == "last_seen") {
      if (auto ms = parseInteger(value)) mark.last_seen = fromUnixMs(*ms);
    }
    if (field == "hits") mark.hits = static_cast<std::uint64_t>(parseInteger(value).value_or(0));
    if (field == "expires") {
      if (auto ms = parseInteger(value)) mark.expires = fromUnixMs(*ms);
    }
  }
  return mark;
}

// The mark from a SISMEMBER reply and an HGETALL reply, as liveMark() in the scripts sees it.
std::optional<Mark> markFrom(const RedisReply& listed, const RedisReply& hash,
                             const std::string& registry_set, TimePoint now) {
  if (listed.integer != 1) return std::nullopt;
  if (hash.elements.empty()) {
    Mark mark;
    mark.detector = "operator";
    mark.reason = "listed in " + registry_set;
    mark.evidence = "{}";
    mark.action = "REJECT";
    return mark;
  }
  auto mark = markFromHash(hash);
  if (!isLive(mark, now)) return std::nullopt;
  return mark;
}

}  // namespace

// Pub/sub channels are not per database: the database number in the name keeps two
// deployments on one Redis (databases 0 and 1, the same set name) out of each other's caches.
std::string registryChannel(const RedisStoreOptions& options) {
  return options.registry_set + ":db" + std::to_string(options.redis.database);
}

namespace {

// AUTH and SUBSCRIBE to the registry channel (built outside a coroutine: g++ 12 and braced
// lists of literals inside one do not mix).
RedisPipeline registrySubscription(const RedisStoreOptions& options) {
  RedisPipeline subscribe;
  addAuth(subscribe, options.redis.username, options.redis.password);
  subscribe.add({"SUBSCRIBE", registryChannel(options)});
  return subscribe;
}

Result<void> replyError(const RedisReply& reply) {
  if (reply.isError()) return fail("Redis: " + reply.text);
  return {};
}

std::atomic<std::uint64_t> next_store_id{1};

// The io_context behind an executor, when it is one (not a strand or another kind).
asio::io_context* contextOf(const asio::any_io_executor& executor) {
  if (const auto* plain = executor.target<asio::io_context::executor_type>()) {
    return &plain->context();
  }
  using Tracked = decltype(asio::prefer(std::declval<asio::io_context::executor_type>(),
                                        asio::execution::outstanding_work.tracked));
  if (const auto* tracked = executor.target<Tracked>()) return &tracked->context();
  return nullptr;
}

}  // namespace

// The Redis clients living on one io_context, one per store that was called from it. They go
// away with the context (their sockets and timers belong to it), whichever of the two, store or
// context, ends first; both end on the same thread in the daemon and the tests.
class ContextClients : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  explicit ContextClients(asio::execution_context& context) : service(context) {}

  Guarded<std::map<std::uint64_t, std::shared_ptr<RedisClient>>> clients;

 private:
  void shutdown() override {
    auto taken = std::move(*clients.lock());
    taken.clear();  // outside the lock: a client's destructor posts to its strand
  }
};

asio::execution_context::id ContextClients::id;

RedisClient& RedisStore::clientFor(const asio::any_io_executor& executor) {
  auto* context = contextOf(executor);
  if (context == nullptr || context == &io_) return *client_;
  auto& owner = asio::use_service<ContextClients>(*context);
  {
    auto clients = owner.clients.lock();
    if (auto found = clients->find(id_); found != clients->end()) return *found->second;
  }
  auto made = RedisClient::create(context->get_executor(), options_.redis);
  if (!made) return *client_;  // options were checked when client_ was made; cannot happen
  std::shared_ptr<RedisClient> client(std::move(*made));
  owner.clients.lock()->emplace(id_, client);
  context_clients_.lock()->push_back(ContextClient{client, &owner});
  return *client;
}

Result<std::unique_ptr<RedisStore>> RedisStore::open(RedisStoreOptions options) {
  if (options.key_prefix.find_first_of("{}") != std::string::npos) {
    return fail("Redis key prefix must not contain '{' or '}'");
  }
  if (options.registry_set.empty()) return fail("Redis registry set name is empty");
  std::unique_ptr<RedisStore> store(new RedisStore(std::move(options)));
  auto client = RedisClient::create(store->io_.get_executor(), store->options_.redis);
  if (!client) return fail(client.error().message);
  store->client_ = std::move(*client);
  if (store->options_.registry_cache_entries > 0) {
    asio::co_spawn(store->io_, store->watchRegistry(), asio::detached);
  }
  return store;
}

RedisStore::RedisStore(RedisStoreOptions options)
    : options_(std::move(options)),
      work_(io_.get_executor()),
      thread_([this] { io_.run(); }),
      id_(next_store_id.fetch_add(1)),
      execute_script_{kExecuteScript.c_str(), {}, {}},
      mark_script_{kMarkScript.c_str(), {}, {}},
      clear_script_{kClearScript.c_str(), {}, {}},
      forget_sets_script_{kForgetSetsScript, {}, {}},
      cache_(options_.registry_cache_entries),
      discovery_(options_.redis),
      channel_socket_(io_),
      channel_pause_(io_) {}

RedisStore::~RedisStore() {
  asio::post(io_, [this] {
    stopping_ = true;
    boost::system::error_code ignored;
    channel_socket_.close(ignored);
    channel_pause_.cancel();
  });
  // Clients on contexts still alive leave them now (one whose context ended went with it).
  for (auto& entry : *context_clients_.lock()) {
    if (auto client = entry.client.lock()) {
      auto taken = entry.owner->clients.lock()->extract(id_);
      (void)taken;  // destroyed here, after its lock: its shutdown is posted to its context
    }
  }
  client_.reset();  // its shutdown runs on the I/O thread, which then runs out of work
  work_.reset();
  thread_.join();
}

std::string RedisStore::accountKey(const std::string& account, std::string_view what) const {
  std::string key;
  key.reserve(options_.key_prefix.size() + account.size() + what.size() + 4);
  key += '{';
  key += options_.key_prefix;
  key += ':';
  key += account;
  key += "}:";
  key += what;
  return key;
}

template <class T>
Result<T> RedisStore::blockOn(asio::awaitable<Result<T>> task) {
  return asio::co_spawn(io_, std::move(task), asio::use_future).get();
}

asio::awaitable<Result<RedisReply>> RedisStore::runScript(RedisClient& client, Script& script,
                                                          std::vector<std::string> keys,
                                                          std::vector<std::string> args,
                                                          bool durable) {
  std::vector<std::string_view> tail;
  tail.reserve(keys.size() + args.size() + 1);
  const auto key_count = std::to_string(keys.size());
  tail.push_back(key_count);
  for (const auto& key : keys) tail.push_back(key);
  for (const auto& arg : args) tail.push_back(arg);
  const auto channel = registryChannel(options_);
  tail.push_back(channel);  // read by the registry scripts as their last argument
  const bool wait = durable && options_.wait_replicas > 0;
  const auto replicas = std::to_string(options_.wait_replicas);
  const auto wait_ms = std::to_string(options_.wait_timeout.count());
  // WAIT blocks its connection up to wait_timeout: the call gets that on top of its own timeout.
  const auto timeout =
      wait ? options_.redis.command_timeout + options_.wait_timeout : std::chrono::milliseconds{};

  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string sha;
    {
      std::lock_guard lock(script.mutex);
      sha = script.sha;
    }
    RedisPipeline commands;
    std::vector<std::string_view> command;
    if (sha.empty()) {
      // Learn the SHA and run the script in the same round trip.
      commands.add({"SCRIPT", "LOAD", script.body});
      command = {"EVAL", script.body};
    } else {
      command = {"EVALSHA", sha};
    }
    command.insert(command.end(), tail.begin(), tail.end());
    commands.add(command);
    const std::size_t script_index = commands.size() - 1;
    if (wait) commands.add({"WAIT", replicas, wait_ms});
    auto replies = co_await client.pipeline(std::move(commands), timeout);
    if (!replies) {
      ++errors_;
      co_return fail(replies.error().message);
    }
    if (sha.empty() && replies->front().type == RedisReply::Type::kString) {
      std::lock_guard lock(script.mutex);
      script.sha = replies->front().text;
    }
    auto& reply = (*replies)[script_index];
    if (reply.isErrorCode("NOSCRIPT")) {  // Redis restarted or failed over: load it again
      std::lock_guard lock(script.mutex);
      script.sha.clear();
      continue;
    }
    if (reply.isError()) {
      ++errors_;
      co_return fail("Redis script failed: " + reply.text);
    }
    if (wait && replies->back().integer < options_.wait_replicas) {
      ++errors_;
      co_return fail("the change reached " + std::to_string(replies->back().integer) + " of " +
                     replicas + " Redis replicas within " + wait_ms + " ms");
    }
    co_return std::move(reply);
  }
  ++errors_;
  co_return fail("Redis keeps forgetting the script (NOSCRIPT)");
}

Result<BatchResult> RedisStore::execute(const Batch& batch, TimePoint now) {
  return blockOn(executeAsync(batch, now));
}

asio::awaitable<Result<BatchResult>> RedisStore::executeAsync(Batch batch, TimePoint now) {
  if (auto ok = checkAccount(batch.account); !ok) co_return tl::unexpected(ok.error());
  std::vector<std::string> keys{accountKey(batch.account, "mark"), options_.registry_set,
                                accountKey(batch.account, "audit"),
                                accountKey(batch.account, "names")};
  std::vector<std::string> args{decimal(toUnixMs(now)),
                                batch.account,
                                decimal(options_.audit_entries),
                                batch.check_registry ? "1" : "0",
                                decimal(static_cast<std::int64_t>(batch.counters.size())),
                                decimal(static_cast<std::int64_t>(batch.sets.size())),
                                decimal(options_.max_set_entries)};
  for (const auto& op : batch.counters) {
    if (auto ok = checkName(op.name); !ok) co_return tl::unexpected(ok.error());
    keys.push_back(accountKey(batch.account, "c:" + op.name));
    args.insert(args.end(),
                {op.name, decimal(std::max<std::uint32_t>(1, op.window_s)), decimal(op.buckets),
                 decimal(static_cast<std::int64_t>(op.amount)),
                 op.add_only_below ? decimal(static_cast<std::int64_t>(*op.add_only_below)) : "",
                 decimal(op.all_or_none_group)});
  }
  for (const auto& op : batch.sets) {
    if (auto ok = checkName(op.name); !ok) co_return tl::unexpected(ok.error());
    keys.push_back(accountKey(batch.account, "s:" + op.name));
    args.insert(args.end(), {op.name, op.value, decimal(op.ttl_s)});
  }

  const auto executor = co_await asio::this_coro::executor;
  auto reply =
      co_await runScript(clientFor(executor), execute_script_, std::move(keys), std::move(args));
  if (!reply) co_return tl::unexpected(reply.error());
  if (reply->type != RedisReply::Type::kArray || reply->elements.empty()) {
    co_return fail("unexpected reply from the Redis store script: " + reply->describe());
  }
  BatchResult result;
  if (reply->elements[0].integer == 1) {
    auto mark = decodeMark(*reply);
    if (!mark) co_return tl::unexpected(mark.error());
    cache_.marked(batch.account, mark->action);
    result.mark = std::move(*mark);
    co_return result;
  }
  if (batch.check_registry) cache_.cleared(batch.account);
  const std::size_t expected = 1 + 2 * (batch.counters.size() + batch.sets.size());
  if (reply->elements.size() != expected) {
    co_return fail("unexpected reply from the Redis store script: " + reply->describe());
  }
  std::size_t at = 1;
  for (std::size_t i = 0; i < batch.counters.size(); ++i, at += 2) {
    result.counters.push_back(CounterResult{static_cast<std::uint64_t>(reply->elements[at].integer),
                                            reply->elements[at + 1].integer == 1});
  }
  for (std::size_t i = 0; i < batch.sets.size(); ++i, at += 2) {
    result.sets.push_back(SetResult{static_cast<std::uint32_t>(reply->elements[at].integer),
                                    reply->elements[at + 1].integer == 1});
  }
  co_return result;
}

Result<MarkOutcome> RedisStore::mark(const std::string& account, const Mark& mark, TimePoint now) {
  return blockOn(markAsync(account, mark, now));
}

asio::awaitable<Result<MarkOutcome>> RedisStore::markAsync(std::string account, Mark mark,
                                                           TimePoint now) {
  if (auto ok = checkAccount(account); !ok) co_return tl::unexpected(ok.error());
  if (mark.first_seen == TimePoint{}) mark.first_seen = now;
  if (mark.last_seen == TimePoint{}) mark.last_seen = now;
  std::vector<std::string> keys{accountKey(account, "mark"), options_.registry_set,
                                accountKey(account, "audit")};
  std::vector<std::string> args{decimal(toUnixMs(now)),
                                account,
                                decimal(options_.audit_entries),
                                mark.detector,
                                mark.reason,
                                mark.evidence,
                                mark.action,
                                decimal(toUnixMs(mark.first_seen)),
                                decimal(toUnixMs(mark.last_seen)),
                                decimal(static_cast<std::int64_t>(mark.hits)),
                                mark.expires ? decimal(toUnixMs(*mark.expires)) : ""};
  const auto executor = co_await asio::this_coro::executor;
  auto reply =
      co_await runScript(clientFor(executor), mark_script_, std::move(keys), std::move(args), true);
  if (!reply) co_return tl::unexpected(reply.error());
  auto stored = decodeMark(*reply);
  if (!stored) co_return tl::unexpected(stored.error());
  cache_.marked(account, stored->action);
  co_return MarkOutcome{reply->elements[0].integer == 1, std::move(*stored)};
}

Result<bool> RedisStore::clear(const std::string& account, const ClearInfo& info, TimePoint now) {
  return blockOn(clearAsync(account, info, now));
}

asio::awaitable<Result<bool>> RedisStore::clearAsync(std::string account, ClearInfo info,
                                                     TimePoint now) {
  if (auto ok = checkAccount(account); !ok) co_return tl::unexpected(ok.error());
  std::vector<std::string> keys{accountKey(account, "mark"), options_.registry_set,
                                accountKey(account, "audit")};
  std::vector<std::string> args{decimal(toUnixMs(now)), account, decimal(options_.audit_entries),
                                info.by, info.reason};
  const auto executor = co_await asio::this_coro::executor;
  auto reply = co_await runScript(clientFor(executor), clear_script_, std::move(keys),
                                  std::move(args), true);
  if (!reply) co_return tl::unexpected(reply.error());
  cache_.cleared(account);
  co_return reply->integer == 1;
}

Result<std::optional<Mark>> RedisStore::getMark(const std::string& account, TimePoint now) {
  return blockOn(getMarkAsync(account, now));
}

// getMark() awaited: the same two commands through the store's client, which hops to its own
// strand, so any event loop may await it.
asio::awaitable<Result<std::optional<Mark>>> RedisStore::getMarkAsync(std::string account,
                                                                      TimePoint now) {
  // No string literal in a braced list inside a coroutine (g++ 12 miscompiles those).
  const std::string_view sismember = "SISMEMBER", hgetall = "HGETALL";
  const auto mark_key = accountKey(account, "mark");
  RedisPipeline commands;
  commands.add({sismember, options_.registry_set, account});
  commands.add({hgetall, mark_key});
  auto replies = co_await client_->pipeline(std::move(commands));
  if (!replies) {
    ++errors_;
    co_return fail(replies.error().message);
  }
  for (const auto& reply : *replies) {
    if (auto ok = replyError(reply); !ok) co_return tl::unexpected(ok.error());
  }
  co_return markFrom((*replies)[0], (*replies)[1], options_.registry_set, now);
}

asio::awaitable<Result<std::size_t>> RedisStore::forgetSetsAsync(std::string account,
                                                                 std::string name_prefix,
                                                                 TimePoint /*now*/) {
  co_return co_await forgetSetsAsync(std::move(account), std::move(name_prefix));
}

Result<std::vector<std::pair<std::string, Mark>>> RedisStore::listMarks(const std::string& after,
                                                                        std::size_t limit,
                                                                        TimePoint now) {
  return blockOn(listMarksAsync(after, limit, now));
}

namespace {

// The commands and the parsing of a listing and of an account's view, apart from the coroutines
// that send them (g++ 12 miscompiles braced lists of literals inside coroutines).
// What SISMEMBER answers for a member: the listing's accounts are members of the registry set.
RedisReply memberReply() {
  return RedisReply{RedisReply::Type::kInteger, "", 1, {}};
}

RedisPipeline markHashesCommands(const RedisStore& store, const std::vector<std::string>& accounts,
                                 std::size_t start, std::size_t end) {
  RedisPipeline commands;
  for (std::size_t i = start; i < end; ++i) {
    commands.add({"HGETALL", store.accountKey(accounts[i], "mark")});
  }
  return commands;
}

RedisPipeline viewFirstCommands(const RedisStore& store, const std::string& registry_set,
                                const std::string& account) {
  RedisPipeline first;
  first.add({"SISMEMBER", registry_set, account});
  first.add({"HGETALL", store.accountKey(account, "mark")});
  first.add({"HGETALL", store.accountKey(account, "names")});
  first.add({"LRANGE", store.accountKey(account, "audit"), "0", "-1"});
  return first;
}

// The view's mark and audit from the first replies; `names` (sorted) and `set_ttl_s` ("c:<counter>"
// -> window_s, "s:<set>" -> ttl_s of the latest touch) say what to read next.
AccountView viewFromFirstReplies(const std::string& account, const std::vector<RedisReply>& replies,
                                 const std::string& registry_set, TimePoint now,
                                 std::vector<std::string>& names,
                                 std::map<std::string, std::int64_t>& set_ttl_s) {
  AccountView view;
  view.account = account;
  view.mark = markFrom(replies[0], replies[1], registry_set, now);
  for (const auto& line : replies[3].elements) {
    boost::system::error_code error;
    const auto parsed = boost::json::parse(line.text, error);
    if (error || !parsed.is_object()) continue;
    const auto& object = parsed.as_object();
    auto text = [&](const char* field) -> std::string {
      const auto* value = object.if_contains(field);
      return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
    };
    AuditEntry entry;
    entry.at = fromUnixMs(parseInteger(text("at")).value_or(0));
    entry.account = account;
    entry.event = text("event");
    entry.by = text("by");
    entry.reason = text("reason");
    entry.evidence = text("evidence");
    view.audit.push_back(std::move(entry));
  }
  const auto& name_fields = replies[2].elements;
  for (std::size_t f = 0; f + 1 < name_fields.size(); f += 2) {
    names.push_back(name_fields[f].text);
    set_ttl_s[name_fields[f].text] = parseInteger(name_fields[f + 1].text).value_or(0);
  }
  std::sort(names.begin(), names.end());
  return view;
}

RedisPipeline viewDetailCommands(const RedisStore& store, const std::string& account,
                                 const std::vector<std::string>& names) {
  RedisPipeline details;
  for (const auto& name : names) {
    if (name.starts_with("c:")) {
      details.add({"HGETALL", store.accountKey(account, name)});
    } else {
      details.add({"ZRANGE", store.accountKey(account, name), "0", "-1", "WITHSCORES"});
    }
  }
  return details;
}

void addViewDetails(AccountView& view, const std::vector<std::string>& names,
                    std::map<std::string, std::int64_t>& set_ttl_s,
                    const std::vector<RedisReply>& contents, TimePoint now) {
  const std::int64_t now_s = floorSeconds(toUnixMs(now));
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& reply = contents[i];
    if (reply.isError() || reply.elements.empty()) continue;  // expired since
    const auto name = names[i].substr(2);
    if (names[i].starts_with("c:")) {
      // The script's bucket layout (see loadWindow): fields g and w, and index -> count.
      std::int64_t window_s = 1, granularity_s = 1;
      std::vector<std::pair<std::int64_t, std::int64_t>> buckets;
      for (std::size_t f = 0; f + 1 < reply.elements.size(); f += 2) {
        const auto& field = reply.elements[f].text;
        const auto value = parseInteger(reply.elements[f + 1].text).value_or(0);
        if (field == "w") {
          window_s = std::max<std::int64_t>(1, value);
        } else if (field == "g") {
          granularity_s = std::max<std::int64_t>(1, value);
        } else if (auto index = parseInteger(field)) {
          buckets.emplace_back(*index, value);
        }
      }
      const std::int64_t span = (window_s + granularity_s - 1) / granularity_s;
      const std::int64_t oldest_live = std::max<std::int64_t>(now_s, 0) / granularity_s - span + 1;
      std::uint64_t total = 0;
      for (const auto& [index, count] : buckets) {
        if (index >= oldest_live) total += static_cast<std::uint64_t>(count);
      }
      view.counters.push_back(
          AccountView::Counter{name, static_cast<std::uint32_t>(window_s), total});
    } else {
      AccountView::Set set{name, {}};
      const auto ttl_s = set_ttl_s[names[i]];
      for (std::size_t m = 0; m + 1 < reply.elements.size(); m += 2) {
        const auto seen_s = parseInteger(reply.elements[m + 1].text).value_or(0);
        if (now_s - seen_s >= ttl_s) continue;  // expired, not yet dropped by a touch
        set.entries.push_back(SetEntry{reply.elements[m].text, fromUnixMs(seen_s * 1000)});
      }
      view.sets.push_back(std::move(set));
    }
  }
}

}  // namespace

asio::awaitable<Result<std::vector<std::pair<std::string, Mark>>>> RedisStore::listMarksAsync(
    std::string after, std::size_t limit, TimePoint now) {
  // The registry set is unordered: sort its members, then read the page's hashes at once.
  const std::string_view smembers = "SMEMBERS";
  auto members = co_await client_->command(smembers, options_.registry_set);
  if (!members) {
    ++errors_;
    co_return fail(members.error().message);
  }
  if (auto ok = replyError(*members); !ok) co_return tl::unexpected(ok.error());
  std::vector<std::string> accounts;
  for (auto& member : members->elements) {
    if (member.text > after) accounts.push_back(std::move(member.text));
  }
  std::sort(accounts.begin(), accounts.end());
  std::vector<std::pair<std::string, Mark>> marks;
  const RedisReply listed = memberReply();
  for (std::size_t start = 0; start < accounts.size() && marks.size() < limit;) {
    const std::size_t end = std::min(accounts.size(), start + std::max<std::size_t>(limit, 16));
    auto hashes = co_await client_->pipeline(markHashesCommands(*this, accounts, start, end));
    if (!hashes) {
      ++errors_;
      co_return fail(hashes.error().message);
    }
    for (std::size_t i = start; i < end && marks.size() < limit; ++i) {
      const auto& hash = (*hashes)[i - start];
      if (auto ok = replyError(hash); !ok) co_return tl::unexpected(ok.error());
      if (auto mark = markFrom(listed, hash, options_.registry_set, now)) {
        marks.emplace_back(accounts[i], std::move(*mark));
      }
    }
    start = end;
  }
  co_return marks;
}

Result<AccountView> RedisStore::view(const std::string& account, TimePoint now) {
  return blockOn(viewAsync(account, now));
}

asio::awaitable<Result<AccountView>> RedisStore::viewAsync(std::string account, TimePoint now) {
  auto replies =
      co_await client_->pipeline(viewFirstCommands(*this, options_.registry_set, account));
  if (!replies) {
    ++errors_;
    co_return fail(replies.error().message);
  }
  for (const auto& reply : *replies) {
    if (auto ok = replyError(reply); !ok) co_return tl::unexpected(ok.error());
  }
  std::vector<std::string> names;
  std::map<std::string, std::int64_t> set_ttl_s;
  auto view = viewFromFirstReplies(account, *replies, options_.registry_set, now, names, set_ttl_s);
  if (names.empty()) co_return view;
  auto contents = co_await client_->pipeline(viewDetailCommands(*this, account, names));
  if (!contents) {
    ++errors_;
    co_return fail(contents.error().message);
  }
  addViewDetails(view, names, set_ttl_s, *contents, now);
  co_return view;
}

Result<std::size_t> RedisStore::forgetSets(const std::string& account, std::string_view name_prefix,
                                           TimePoint /*now*/) {
  return blockOn(forgetSetsAsync(account, std::string(name_prefix)));
}

asio::awaitable<Result<std::size_t>> RedisStore::forgetSetsAsync(std::string account,
                                                                 std::string name_prefix) {
  if (auto ok = checkAccount(account); !ok) co_return tl::unexpected(ok.error());
  std::vector<std::string> keys{accountKey(account, "names")};
  std::vector<std::string> args{accountKey(account, "s:"), name_prefix};
  const auto executor = co_await asio::this_coro::executor;
  auto reply = co_await runScript(clientFor(executor), forget_sets_script_, std::move(keys),
                                  std::move(args), true);
  if (!reply) co_return tl::unexpected(reply.error());
  co_return static_cast<std::size_t>(std::max<long long>(0, reply->integer));
}

RegistryChannelStats RedisStore::registryChannelStats() const {
  return {channel_subscriptions_.load(), channel_messages_.load(), channel_subscribed_.load()};
}

// "mark <action> <account>" or "clear <account>" (the account is the rest: it may hold spaces).
void RedisStore::applyRegistryMessage(const RedisReply& message) {
  // ["message", <channel>, <payload>]
  if (message.type != RedisReply::Type::kArray || message.elements.size() != 3 ||
      message.elements[0].text != "message") {
    return;
  }
  const std::string_view payload = message.elements[2].text;
  const auto space = payload.find(' ');
  if (space == std::string_view::npos) return;
  const auto event = payload.substr(0, space);
  auto rest = payload.substr(space + 1);
  if (event == "clear" && !rest.empty()) {
    cache_.cleared(rest);
    ++channel_messages_;
  } else if (event == "mark") {
    const auto gap = rest.find(' ');
    if (gap == std::string_view::npos || gap + 1 >= rest.size()) return;
    cache_.marked(rest.substr(gap + 1), rest.substr(0, gap));
    ++channel_messages_;
  }
}

asio::awaitable<Result<void>> RedisStore::subscribeRegistry(RedisReplyReader& reader) {
  RedisEndpoint target = options_.redis.server;
  if (!options_.redis.sentinels.empty()) {
    auto primary = co_await discovery_.primary(io_.get_executor());
    if (!primary) co_return fail(primary.error().message);
    target = std::move(*primary);
  }
  const auto address = co_await resolveRedisEndpoint(io_.get_executor(), target);
  if (!address) co_return fail(address.error().message);
  if (stopping_) co_return fail("shut down");
  // Connect and subscribe within connect_timeout; the guard closes the socket otherwise.
  auto guard = std::make_shared<asio::steady_timer>(io_, options_.redis.connect_timeout);
  guard->async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    boost::system::error_code ignored;
    channel_socket_.close(ignored);
  });
  struct CancelGuard {
    std::shared_ptr<asio::steady_timer> timer;
    ~CancelGuard() { timer->cancel(); }
  } cancel_guard{guard};

  boost::system::error_code error;
  co_await channel_socket_.async_connect(*address,
                                         asio::redirect_error(asio::use_awaitable, error));
  if (error)
    co_return fail("cannot connect to Redis at " + target.describe() + ": " + error.message());
  // A peer that vanishes without a reset is noticed by keepalive, not left subscribed for ever.
  channel_socket_.set_option(asio::socket_base::keep_alive(true), error);
  const auto subscribe = registrySubscription(options_);
  co_return co_await sendAndConfirm(channel_socket_, reader, subscribe);
}

// Messages may have been missed while the channel was down: keep only the cached accounts that
// are still in the registry set.
asio::awaitable<void> RedisStore::resyncCache() {
  auto members = co_await client_->command("SMEMBERS", options_.registry_set);
  if (!members || members->type != RedisReply::Type::kArray) co_return;
  std::unordered_set<std::string> listed;
  for (auto& member : members->elements) listed.insert(std::move(member.text));
  cache_.retainOnly(listed);
}

asio::awaitable<void> RedisStore::watchRegistry() {
  std::chrono::milliseconds backoff{0};
  bool missed = false;  // a subscription ended: messages may have been lost
  bool failing = false;
  std::array<char, 4096> buffer;
  while (!stopping_) {
    RedisReplyReader reader;
    auto subscribed = co_await subscribeRegistry(reader);
    std::string why = subscribed ? "" : subscribed.error().message;
    if (subscribed) {
      backoff = std::chrono::milliseconds(0);
      ++channel_subscriptions_;
      channel_subscribed_ = true;
      if (failing)
        spdlog::info("Redis registry channel {} subscribed again", registryChannel(options_));
      failing = false;
      if (missed && cache_.size() > 0) co_await resyncCache();
      missed = true;
      while (!stopping_) {
        auto next = reader.next();
        if (!next) {
          why = next.error().message;
          break;
        }
        if (*next) {
          applyRegistryMessage(**next);
          continue;
        }
        boost::system::error_code error;
        const auto received = co_await channel_socket_.async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
        if (error) {
          why = error == asio::error::eof ? "Redis closed the connection" : error.message();
          break;
        }
        if (auto fed = reader.feed(buffer.data(), received); !fed) {
          why = fed.error().message;
          break;
        }
      }
      channel_subscribed_ = false;
    }
    boost::system::error_code ignored;
    channel_socket_.close(ignored);
    if (stopping_) break;
    if (!failing) {
      spdlog::warn("Redis registry channel {}: {}; retrying", registryChannel(options_), why);
      failing = true;
    }
    backoff = std::clamp(backoff * 2, options_.redis.reconnect_min,
                         std::max(options_.redis.reconnect_min, options_.redis.reconnect_max));
    channel_pause_.expires_after(backoff);
    co_await channel_pause_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

StoreStats RedisStore::stats() {
  // Accounts and marks live in Redis (SCARD of the registry set counts marks); what this
  // process knows is how many calls failed.
  StoreStats stats;
  stats.flush_errors = errors_.load();
  return stats;
}

}  // namespace saslguard::store
