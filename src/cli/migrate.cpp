// migrate.cpp — `saslguard migrate redis --from geoip-policyd`: a one-shot copy of
// geoip-policyd's per-account records (`geopol_*`) into the Redis store's geo sets, with the same
// keys, members and expiry the store's scripts write, so the geo detector counts them at once.
// Idempotent: members are added with ZADD GT (a later run never moves a last-seen time back).
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "cli/migrate_geoip_policyd.hpp"
#include "common/files.hpp"
#include "common/strings.hpp"
#include "config/loader.hpp"
#include "engine/detectors/geo.hpp"
#include "engine/identity.hpp"
#include "engine/state_store.hpp"

namespace saslguard::cli {
namespace {

namespace asio = boost::asio;

struct MigrateOptions {
  config::LoadRequest request;
  std::string from;
  std::string source;  // redis://host:port/db; empty: the [redis] section's server
  std::string source_password_file;
  std::string prefix = "geopol_";
  bool dry_run = false;
  bool no_marks = false;
};

// Adds every member with its last-seen time (never moving one back), drops what expired, keeps
// max_set_entries (the least recently seen go), sets the key to expire ttl after its newest
// member and records the set in the names hash, as the request script does. KEYS[1] the names
// hash, KEYS[2..] the sets; ARGV[1] now (unix s), ARGV[2] max entries, then per set: name, ttl_s,
// n, and n pairs (member, last seen). Returns how many members were new.
constexpr const char kImportSets[] = R"lua(
local now_s = tonumber(ARGV[1])
local max_entries = tonumber(ARGV[2])
local at = 3
local added = 0
local names_until_ms = 0
for k = 2, #KEYS do
  local key = KEYS[k]
  local name, ttl, n = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  at = at + 3
  for i = 1, n do
    if not redis.call('ZSCORE', key, ARGV[at]) then added = added + 1 end
    redis.call('ZADD', key, 'GT', ARGV[at + 1], ARGV[at])
    at = at + 2
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_s - ttl)
  local over = redis.call('ZCARD', key) - max_entries
  if max_entries > 0 and over > 0 then redis.call('ZPOPMIN', key, over) end
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #newest == 2 then
    local until_ms = (tonumber(newest[2]) + ttl) * 1000
    local pttl = redis.call('PTTL', key)
    if pttl < 0 or now_s * 1000 + pttl < until_ms then redis.call('PEXPIREAT', key, until_ms) end
    redis.call('HSET', KEYS[1], 's:' .. name, ttl)
    names_until_ms = math.max(names_until_ms, until_ms)
  end
end
if names_until_ms > 0 then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 or now_s * 1000 + pttl < names_until_ms then
    redis.call('PEXPIREAT', KEYS[1], names_until_ms)
  end
end
return added
)lua";

// redis://[:password@]host[:port][/db]; a password in the URL is accepted but
// --source-password-file keeps it out of `ps`.
Result<store::RedisOptions> parseSource(const std::string& url, store::RedisOptions options) {
  constexpr std::string_view kScheme = "redis://";
  std::string_view rest(url);
  if (rest.substr(0, kScheme.size()) != kScheme) {
    return fail("--source: expected redis://host:port/db, got '" + url + "'");
  }
  rest.remove_prefix(kScheme.size());
  options.sentinels.clear();
  options.username.clear();
  options.password.clear();
  options.database = 0;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto credentials = rest.substr(0, at);
    const auto colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      options.password = std::string(credentials);
    } else {
      options.username = std::string(credentials.substr(0, colon));
      options.password = std::string(credentials.substr(colon + 1));
    }
    rest.remove_prefix(at + 1);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (db.find_first_not_of("0123456789") != std::string_view::npos || db.size() > 4) {
        return fail("--source: database '" + std::string(db) + "' is not a number");
      }
      options.database = std::stoi(std::string(db));
    }
    rest = rest.substr(0, slash);
  }
  auto server = store::parseRedisEndpoint(rest, 6379);
  if (!server) return fail("--source: " + server.error().message);
  options.server = std::move(*server);
  return options;
}

// SCAN's pattern language: the prefix matches itself only.
std::string globEscape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string joined(const std::vector<MigratedEntry>& entries) {
  std::string out;
  for (const auto& e : entries) out += (out.empty() ? "" : " ") + e.value;
  return out.empty() ? "-" : out;
}

struct Summary {
  std::size_t found = 0, imported = 0, entries = 0, added = 0, expired = 0, marked = 0;
  std::map<std::string, std::size_t> skipped;  // reason -> records
  std::size_t skippedTotal() const {
    std::size_t total = 0;
    for (const auto& [reason, count] : skipped) total += count;
    return total;
  }
};

void printSummary(const Summary& s, bool dry_run) {
  std::cout << (dry_run ? "dry run: " : "") << s.found << " geoip-policyd record(s), " << s.imported
            << (dry_run ? " would be imported (" : " imported (") << s.entries << " entries";
  if (!dry_run) std::cout << ", " << s.added << " new";
  std::cout << ", " << s.expired << " expired left out), " << s.marked
            << (dry_run ? " would be marked" : " marked") << ", " << s.skippedTotal() << " skipped";
  if (!s.skipped.empty()) {
    std::cout << " (";
    bool first = true;
    for (const auto& [reason, count] : s.skipped) {
      std::cout << (first ? "" : ", ") << count << " " << reason;
      first = false;
    }
    std::cout << ")";
  }
  std::cout << "\n";
}

class Migration {
 public:
  Migration(const config::Settings& settings, const MigrateOptions& options,
            store::RedisClient& source, store::RedisStore* target, std::uint32_t max_entries)
      : settings_(settings),
        options_(options),
        source_(source),
        target_(target),
        max_entries_(max_entries),
        identities_(settings.identity) {
    rules_.ttl_s = static_cast<std::uint32_t>(settings.detectors.geo.ttl_s);
    rules_.ipv6_prefix = settings.detectors.geo.ipv6_prefix;
    now_ = std::chrono::system_clock::now();
    rules_.now_s =
        std::chrono::duration_cast<std::chrono::seconds>(now_.time_since_epoch()).count();
  }

  // 0: every record was read (some may have been skipped); 1: Redis failed us.
  int run() {
    std::string cursor = "0";
    const auto pattern = globEscape(options_.prefix) + "*";
    do {
      auto page = source_.commandBlocking({"SCAN", cursor, "MATCH", pattern, "COUNT", "500"});
      if (!page) return failed("reading the source Redis: " + page.error().message);
      if (page->type != store::RedisReply::Type::kArray || page->elements.size() != 2) {
        return failed("reading the source Redis: SCAN answered " + page->describe());
      }
      cursor = page->elements[0].text;
      std::vector<std::string> keys;
      for (const auto& key : page->elements[1].elements) keys.push_back(key.text);
      if (keys.empty()) continue;
      store::RedisPipeline gets;
      for (const auto& key : keys) gets.add({"GET", key});
      auto values = source_.pipelineBlocking(std::move(gets));
      if (!values) return failed("reading the source Redis: " + values.error().message);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (auto code = importOne(keys[i], (*values)[i]); code != 0) return code;
      }
    } while (cursor != "0");
    printSummary(summary_, options_.dry_run);
    return 0;
  }

 private:
  int failed(const std::string& message) {
    std::cerr << "saslguard: " << message << "\n";
    printSummary(summary_, options_.dry_run);
    return 1;
  }

  void skip(const std::string& key, const std::string& reason, const std::string& detail) {
    ++summary_.skipped[reason];
    std::cerr << "skipped " << key << ": " << detail << "\n";
  }

  int importOne(const std::string& key, const store::RedisReply& value) {
    ++summary_.found;
    if (value.isNil())
      return skip(key, "gone meanwhile", "the key expired during the migration"), 0;
    if (value.type != store::RedisReply::Type::kString) {
      return skip(key, "not a string", "not a geoip-policyd record: " + value.describe()), 0;
    }
    const auto account =
        identities_.normalise(std::string_view(key).substr(options_.prefix.size()));
    if (account.empty()) return skip(key, "empty account", "no account after the prefix"), 0;
    auto record = migrateGeopolRecord(account, value.text, rules_);
    if (!record) {
      const auto& message = record.error().message;
      return skip(key,
                  message.rfind("malformed JSON", 0) == 0 ? "malformed JSON" : "malformed record",
                  message),
             0;
    }
    summary_.expired += record->expired;
    const bool mark = record->locked && !options_.no_marks;
    if (record->live() == 0 && !mark) {
      return skip(key, "nothing live",
                  "every entry is older than detectors.geo.ttl_s (" + std::to_string(rules_.ttl_s) +
                      " s)"),
             0;
    }
    ++summary_.imported;
    summary_.entries += record->live();
    if (mark) ++summary_.marked;
    if (options_.dry_run) {
      std::cout << record->account << ": countries " << joined(record->foreign_countries)
                << "; ips " << joined(record->foreign_ips) << "; home countries "
                << joined(record->home_countries) << "; home ips " << joined(record->home_ips)
                << (mark ? "; locked: would be marked compromised" : "") << "\n";
      return 0;
    }
    if (record->live() > 0) {
      auto added = writeSets(*record);
      if (!added) return failed("writing " + record->account + ": " + added.error().message);
      summary_.added += *added;
    }
    if (mark) {
      auto marked = markLocked(key, record->account);
      if (!marked) return failed("marking " + record->account + ": " + marked.error().message);
    }
    return 0;
  }

  Result<std::size_t> writeSets(const MigratedRecord& record) {
    const std::uint32_t ttl = rules_.ttl_s;
    std::vector<std::string> args{"EVAL", kImportSets, "0", std::to_string(rules_.now_s),
                                  std::to_string(max_entries_)};
    std::vector<std::string> keys{target_->accountKey(record.account, "names")};
    const auto add = [&](std::string_view name, const std::vector<MigratedEntry>& entries) {
      if (entries.empty()) return;
      keys.push_back(target_->accountKey(record.account, "s:" + std::string(name)));
      args.push_back(std::string(name));
      args.push_back(std::to_string(ttl));
      args.push_back(std::to_string(entries.size()));
      for (const auto& e : entries) {
        args.push_back(e.value);
        args.push_back(std::to_string(e.last_seen_s));
      }
    };
    add(engine::GeoDetector::kForeignCountries, record.foreign_countries);
    add(engine::GeoDetector::kHomeCountries, record.home_countries);
    add(engine::GeoDetector::kForeignIps, record.foreign_ips);
    add(engine::GeoDetector::kHomeIps, record.home_ips);
    args[2] = std::to_string(keys.size());
    args.insert(args.begin() + 3, keys.begin(), keys.end());
    std::vector<std::string_view> views(args.begin(), args.end());
    auto reply = target_->client().commandBlocking(views);
    if (!reply) return tl::unexpected(reply.error());
    if (reply->type != store::RedisReply::Type::kInteger) return fail(reply->describe());
    return static_cast<std::size_t>(reply->integer);
  }

  // A locked record refused every request in geoip-policyd; here that is a mark. An account
  // already marked keeps its mark as it is (no extra hit or audit entry on a second run).
  Result<void> markLocked(const std::string& key, const std::string& account) {
    auto existing = target_->getMark(account, now_);
    if (!existing) return tl::unexpected(existing.error());
    if (*existing) return {};
    store::Mark mark;
    mark.detector = "geo";
    mark.reason = "locked in geoip-policyd (block-permanent), migrated";
    mark.evidence = R"({"source":"geoip-policyd","key":")" + jsonEscape(key) + "\"}";
    mark.action = settings_.detectors.geo.action;
    auto marked = target_->mark(account, mark, now_);
    if (!marked) return tl::unexpected(marked.error());
    return {};
  }

  const config::Settings& settings_;
  const MigrateOptions& options_;
  store::RedisClient& source_;
  store::RedisStore* target_;
  std::uint32_t max_entries_;
  engine::IdentityResolver identities_;
  MigrationRules rules_;
  TimePoint now_;
  Summary summary_;
};

int run(MigrateOptions& options) {
  options.request.environment = config::currentEnvironment();
  auto settings = config::load(options.request);
  if (!settings) {
    std::cerr << settings.error().text() << "\n";
    return 78;
  }
  if (settings->state.backend != "redis") {
    std::cerr << "saslguard: migrate redis writes into the Redis store; set state.backend = "
                 "\"redis\" and the [redis] section first\n";
    return 78;
  }
  auto store_options = engine::redisStoreOptions(*settings, engine::StoreUse::kTool);
  if (!store_options) {
    std::cerr << "saslguard: " << store_options.error().message << "\n";
    return 78;
  }
  auto source_options = store_options->redis;
  // SCAN pages and pipelined GETs of a large keyspace take longer than a request may.
  source_options.command_timeout =
      std::max(source_options.command_timeout, std::chrono::milliseconds(10000));
  source_options.pool_size = 1;
  if (!options.source.empty()) {
    auto parsed = parseSource(options.source, source_options);
    if (!parsed) {
      std::cerr << "saslguard: " << parsed.error().message << "\n";
      return 78;
    }
    source_options = std::move(*parsed);
  }
  if (!options.source_password_file.empty()) {
    auto password = readFirstLine(options.source_password_file, "--source-password-file");
    if (!password) {
      std::cerr << "saslguard: " << password.error().message << "\n";
      return 78;
    }
    source_options.password = std::move(*password);
  }
  const auto max_entries = store_options->max_set_entries;
  store_options->redis.command_timeout =
      std::max(store_options->redis.command_timeout, std::chrono::milliseconds(10000));
  auto state = store::RedisStore::open(std::move(*store_options));
  if (!state) {
    std::cerr << "saslguard: " << state.error().message << "\n";
    return 1;
  }

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread thread([&io] { io.run(); });
  int code = 1;
  {
    auto source = store::RedisClient::create(io.get_executor(), source_options);
    if (!source) {
      std::cerr << "saslguard: " << source.error().message << "\n";
    } else {
      Migration migration(*settings, options, **source, state->get(), max_entries);
      code = migration.run();
    }
  }
  work.reset();
  io.stop();
  thread.join();
  return code;
}

}  // namespace

Command addMigrate(CLI::App& app) {
  auto* migrate = app.add_subcommand(
      "migrate", "copy another daemon's state into saslguard's (one shot, idempotent)");
  migrate->require_subcommand(1);
  auto options = std::make_shared<MigrateOptions>();
  auto* redis = migrate->add_subcommand(
      "redis", "geoip-policyd's geopol_* records into the Redis store's geo sets");
  redis->add_option("--from", options->from, "the daemon whose records are read")
      ->required()
      ->check(CLI::IsMember({"geoip-policyd"}));
  redis->add_option("--source", options->source,
                    "redis://host:port/db holding the records (default: the [redis] server and "
                    "database)");
  redis->add_option("--source-password-file", options->source_password_file,
                    "the source's password (its first line)");
  redis->add_option("--prefix", options->prefix, "geoip-policyd's --redis-prefix")
      ->capture_default_str();
  redis->add_flag("--dry-run", options->dry_run, "print what would be imported, write nothing");
  redis->add_flag("--no-marks", options->no_marks,
                  "do not mark accounts geoip-policyd had locked (block-permanent)");
  config::addFlags(*redis, options->request);
  return [options] { return run(*options); };
}

}  // namespace saslguard::cli
