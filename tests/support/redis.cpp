// redis.cpp — see redis.hpp. Probes use hiredis' own blocking client, independent of the
// Asio client under test. Servers log to stdout, which spawnLogged appends to a file.
#include "support/redis.hpp"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/child_process.hpp"

namespace saslguard::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kStartAttempts = 5;
constexpr auto kPollInterval = std::chrono::milliseconds(20);

std::string render(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(reply->str, reply->len);
    case REDIS_REPLY_ERROR:
      return "(error) " + std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
      return "(integer) " + std::to_string(reply->integer);
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (std::size_t i = 0; i < reply->elements; ++i) {
        out += (i > 0 ? ", " : "") + render(reply->element[i]);
      }
      return out + "]";
    }
    default:
      return "(nil)";
  }
}

// Runs one command and hands the raw reply to `use`; false when there was no reply.
bool withReply(unsigned short port, const std::vector<std::string>& args,
               std::chrono::milliseconds timeout, const std::function<void(redisReply*)>& use) {
  timeval limit{};
  limit.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  limit.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, limit);
  if (context == nullptr) return false;
  bool answered = false;
  if (context->err == 0 && redisSetTimeout(context, limit) == REDIS_OK) {
    std::vector<const char*> pointers;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      pointers.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(args.size()), pointers.data(), lengths.data()));
    if (reply != nullptr) {
      use(reply);
      answered = true;
      freeReplyObject(reply);
    }
  }
  redisFree(context);
  return answered;
}

std::string readLog(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool exited(pid_t& pid) {
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
    pid = -1;
    return true;
  }
  return false;
}

// Up once it answers anything: PONG, or -NOAUTH when it has a password.
bool waitUntilAnswering(pid_t& pid, unsigned short port) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (redisQuery(port, {"PING"}, std::chrono::milliseconds(200))) return true;
    if (exited(pid)) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

}  // namespace

std::optional<std::string> redisQuery(unsigned short port, const std::vector<std::string>& args,
                                      std::chrono::milliseconds timeout) {
  std::optional<std::string> text;
  withReply(port, args, timeout, [&](redisReply* reply) { text = render(reply); });
  return text;
}

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = freeLoopbackPort();
    if (launch()) return;
  }
  throw std::runtime_error("redis-server did not start; its log:\n" + log());
}

RedisServer::~RedisServer() {
  stop();
}

bool RedisServer::launch() {
  std::vector<std::string> args{kBinary,
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--daemonize",
                                "no",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir_.path().string(),
                                "--logfile",
                                ""};
  // A replica's first sync would otherwise wait 5 s for more replicas to join it (diskless).
  args.insert(args.end(), {"--repl-diskless-sync-delay", "0"});
  if (!options_.password.empty()) args.insert(args.end(), {"--requirepass", options_.password});
  if (options_.replica_of) {
    args.insert(args.end(), {"--replicaof", "127.0.0.1", std::to_string(*options_.replica_of)});
    if (!options_.primary_password.empty()) {
      args.insert(args.end(), {"--masterauth", options_.primary_password});
    }
  }
  pid_ = spawnLogged(std::move(args), dir_ / "redis.log");
  if (pid_ < 0) throw std::runtime_error(std::string("cannot start ") + kBinary);
  if (waitUntilAnswering(pid_, port_)) return true;
  stopChild(pid_, std::chrono::seconds(5));
  return false;
}

std::string RedisServer::log() const {
  return readLog(dir_ / "redis.log");
}

std::optional<std::string> RedisServer::query(const std::vector<std::string>& args) const {
  return querySequence({args});
}

std::optional<std::string> RedisServer::querySequence(
    const std::vector<std::vector<std::string>>& commands) const {
  // One connection (hiredis' blocking client): AUTH when there is a password, then each command.
  std::optional<std::string> text;
  timeval limit{1, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, limit);
  if (context == nullptr) return text;
  auto run = [&](const std::vector<std::string>& args) -> std::optional<std::string> {
    std::vector<const char*> pointers;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      pointers.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(args.size()), pointers.data(), lengths.data()));
    if (reply == nullptr) return std::nullopt;
    auto rendered = render(reply);
    freeReplyObject(reply);
    return rendered;
  };
  if (context->err == 0 && redisSetTimeout(context, limit) == REDIS_OK &&
      (options_.password.empty() || run({"AUTH", options_.password}))) {
    for (const auto& command : commands) {
      text = run(command);
      if (!text) break;
    }
  }
  redisFree(context);
  return text;
}

void RedisServer::stop() {
  paused_ = false;
  stopChild(pid_, std::chrono::seconds(5));
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  paused_ = false;
}

void RedisServer::start() {
  if (pid_ > 0) return;
  // The port was ours a moment ago; Redis sets SO_REUSEADDR, so TIME_WAIT does not block it.
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    if (launch()) return;
  }
  throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) +
                           "; its log:\n" + log());
}

void RedisServer::pause() {
  if (pid_ <= 0 || paused_) return;
  ::kill(pid_, SIGSTOP);
  paused_ = true;
  // SIGSTOP reaches the threads one by one: wait until every one is in state T, up to 2 s.
  const auto tasks = fs::path("/proc") / std::to_string(pid_) / "task";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all_stopped = true;
    std::error_code error;
    for (const auto& task : fs::directory_iterator(tasks, error)) {
      std::ifstream stat(task.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const auto close = line.rfind(')');
      if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') {
        all_stopped = false;
      }
    }
    if (all_stopped && !error) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void RedisServer::resume() {
  if (pid_ <= 0 || !paused_) return;
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

bool RedisServer::waitForReplicaAcks(int count, std::chrono::milliseconds timeout) const {
  const auto expected = "(integer) " + std::to_string(count);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // A write first: WAIT after no write on this connection counts a replica whose stream the
    // primary has not started yet (it starts on the replica's first ACK, up to 1 s later).
    if (querySequence({{"INCR", "saslguard:replica-probe"},
                       {"WAIT", std::to_string(count), "100"}}) == expected) {
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

bool RedisServer::waitForInfo(const std::string& section, const std::string& line,
                              std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto info = query({"INFO", section});
    if (info && (info->find("\n" + line + "\r") != std::string::npos ||
                 info->find("\n" + line + "\n") != std::string::npos)) {
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

RedisSentinelServer::RedisSentinelServer(unsigned short primary_port, std::string master_name,
                                         std::string primary_password)
    : master_name_(std::move(master_name)),
      primary_port_(primary_port),
      primary_password_(std::move(primary_password)) {
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = freeLoopbackPort();
    if (launch()) return;
  }
  throw std::runtime_error("redis-sentinel did not start; its log:\n" + log());
}

RedisSentinelServer::~RedisSentinelServer() {
  stop();
}

bool RedisSentinelServer::launch() {
  // Sentinel rewrites its configuration file, so it lives in the (writable) directory.
  const auto config = dir_ / "sentinel.conf";
  {
    std::ofstream out(config, std::ios::trunc);
    out << "port " << port_ << "\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\n"
        << "dir " << dir_.path().string() << "\n"
        << "sentinel monitor " << master_name_ << " 127.0.0.1 " << primary_port_ << " 1\n"
        << "sentinel down-after-milliseconds " << master_name_ << " 1000\n"
        << "sentinel failover-timeout " << master_name_ << " 3000\n";
    if (!primary_password_.empty()) {
      out << "sentinel auth-pass " << master_name_ << " " << primary_password_ << "\n";
    }
    if (!out) throw std::runtime_error("cannot write " + config.string());
  }
  pid_ = spawnLogged({kBinary, config.string()}, dir_ / "sentinel.log");
  if (pid_ < 0) throw std::runtime_error(std::string("cannot start ") + kBinary);
  if (waitUntilAnswering(pid_, port_)) return true;
  stopChild(pid_, std::chrono::seconds(5));
  return false;
}

std::string RedisSentinelServer::log() const {
  return readLog(dir_ / "sentinel.log");
}

void RedisSentinelServer::stop() {
  stopChild(pid_, std::chrono::seconds(5));
}

bool RedisSentinelServer::waitForReplicas(std::size_t count,
                                          std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::size_t healthy = 0;
    withReply(port_, {"SENTINEL", "replicas", master_name_}, std::chrono::seconds(1),
              [&](redisReply* reply) {
                if (reply->type != REDIS_REPLY_ARRAY) return;
                for (std::size_t i = 0; i < reply->elements; ++i) {
                  const auto* fields = reply->element[i];
                  // A flat list of name, value pairs; a usable replica's flags are just "slave".
                  for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
                    if (render(fields->element[f]) == "flags" &&
                        render(fields->element[f + 1]) == "slave") {
                      ++healthy;
                    }
                  }
                }
              });
    if (healthy >= count) return true;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

bool RedisSentinelServer::waitForPrimary(unsigned short port,
                                         std::chrono::milliseconds timeout) const {
  const auto expected = "[127.0.0.1, " + std::to_string(port) + "]";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (query({"SENTINEL", "get-master-addr-by-name", master_name_}) == expected) return true;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

}  // namespace saslguard::testing
