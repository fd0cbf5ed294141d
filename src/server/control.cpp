// control.cpp — see control.hpp. The daemon awaits the store for registry changes
// (executeControlAsync); the command-line tools call executeControl on a store of their own.
#include "server/control.hpp"

#include <pwd.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/strings.hpp"
#include "metrics/metrics.hpp"

// g++ 12 reports asio's coroutine frame delete as mismatched once a coroutine is inlined into a
// lambda (a false positive: the frame's own operator new and delete are paired).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace saslguard::server {

namespace json = boost::json;

constexpr std::size_t kMaxCommandBytes = 65536;

static json::object failure(std::string message) {
  return json::object{{"ok", false}, {"error", std::move(message)}};
}

static std::string stringField(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr || !value->is_string()) return {};
  return std::string(value->as_string());
}

static store::Mark operatorMark(const json::object& command, const std::string& caller,
                                TimePoint now) {
  store::Mark mark;
  mark.detector = "operator";
  mark.reason = stringField(command, "reason");
  if (mark.reason.empty()) mark.reason = "blocked by an operator";
  mark.evidence = json::serialize(json::object{{"by", caller}});
  mark.action = "REJECT";
  mark.first_seen = mark.last_seen = now;
  return mark;
}

static json::object clearedAnswer(const std::string& account, const std::string& caller,
                                  const std::string& reason, const Result<bool>& cleared) {
  if (!cleared) return failure(cleared.error().message);
  if (*cleared) {
    spdlog::info("account={} cleared by {} reason={}", quoteForLog(account), caller,
                 quoteForLog(reason));
  }
  return json::object{{"ok", true}, {"cleared", *cleared}};
}

static json::object blockedAnswer(const std::string& account, const std::string& caller,
                                  const store::Mark& mark,
                                  const Result<store::MarkOutcome>& marked) {
  if (!marked) return failure(marked.error().message);
  spdlog::info("account={} blocked by {} reason={}", quoteForLog(account), caller,
               quoteForLog(mark.reason));
  return json::object{{"ok", true}, {"new", marked->is_new}};
}

static std::size_t listLimit(const json::object& command) {
  std::size_t limit = 1000;
  if (const auto* l = command.if_contains("limit"); l != nullptr && l->is_int64()) {
    limit = static_cast<std::size_t>(std::clamp<std::int64_t>(l->as_int64(), 1, 100000));
  }
  return limit;
}

static json::object listedAnswer(
    const Result<std::vector<std::pair<std::string, store::Mark>>>& marks) {
  if (!marks) return failure(marks.error().message);
  json::array accounts;
  for (const auto& [account, mark] : *marks) {
    auto entry = markToJson(mark);
    entry["account"] = account;
    accounts.push_back(std::move(entry));
  }
  return json::object{{"ok", true}, {"accounts", std::move(accounts)}};
}

static json::object shownAnswer(const Result<store::AccountView>& view) {
  if (!view) return failure(view.error().message);
  return json::object{{"ok", true}, {"account", accountViewToJson(*view)}};
}

json::object executeControl(const json::object& command, store::Store& store,
                            const std::string& caller) {
  const auto name = stringField(command, "command");
  const auto now = Clock::now();
  if (name == "accounts.list") {
    return listedAnswer(store.listMarks(stringField(command, "after"), listLimit(command), now));
  }
  if (name == "accounts.show") {
    const auto account = stringField(command, "account");
    if (account.empty()) return failure("accounts.show needs an account");
    return shownAnswer(store.view(account, now));
  }
  if (name == "accounts.clear") {
    const auto account = stringField(command, "account");
    if (account.empty()) return failure("accounts.clear needs an account");
    const auto reason = stringField(command, "reason");
    return clearedAnswer(account, caller, reason,
                         store.clear(account, store::ClearInfo{caller, reason}, now));
  }
  if (name == "accounts.block") {
    const auto account = stringField(command, "account");
    if (account.empty()) return failure("accounts.block needs an account");
    const auto mark = operatorMark(command, caller, now);
    return blockedAnswer(account, caller, mark, store.mark(account, mark, now));
  }
  if (name == "stats") {
    json::object counters;
    for (const auto& sample : metrics::snapshot()) counters[sample.name] = sample.value;
    const auto stats = store.stats();
    counters["store_accounts"] = stats.accounts;
    counters["store_marks"] = stats.marks;
    counters["store_evicted"] = stats.evicted;
    counters["store_flushes"] = stats.flushes;
    counters["store_flush_errors"] = stats.flush_errors;
    counters["connections_open"] = metrics::gauges().connections_open.load();
    return json::object{{"ok", true}, {"stats", std::move(counters)}};
  }
  return failure("unknown command '" + name + "'");
}

asio::awaitable<json::object> executeControlAsync(json::object command, store::Store& store,
                                                  std::string caller) {
  const auto name = stringField(command, "command");
  const auto now = Clock::now();
  // Everything that reads or changes the store waits on it (Redis: up to command_timeout_ms when
  // it is frozen), so it is awaited; the loop serves the admin API and other clients meanwhile.
  if (name == "accounts.list") {
    const auto listed =
        co_await store.listMarksAsync(stringField(command, "after"), listLimit(command), now);
    co_return listedAnswer(listed);
  }
  if (name == "accounts.show") {
    const auto account = stringField(command, "account");
    if (account.empty()) co_return failure("accounts.show needs an account");
    const auto view = co_await store.viewAsync(account, now);
    co_return shownAnswer(view);
  }
  if (name == "accounts.clear") {
    const auto account = stringField(command, "account");
    if (account.empty()) co_return failure("accounts.clear needs an account");
    const auto reason = stringField(command, "reason");
    store::ClearInfo info;
    info.by = caller;
    info.reason = reason;
    const auto cleared = co_await store.clearAsync(account, std::move(info), now);
    co_return clearedAnswer(account, caller, reason, cleared);
  }
  if (name == "accounts.block") {
    const auto account = stringField(command, "account");
    if (account.empty()) co_return failure("accounts.block needs an account");
    const auto mark = operatorMark(command, caller, now);
    const auto marked = co_await store.markAsync(account, mark, now);
    co_return blockedAnswer(account, caller, mark, marked);
  }
  co_return executeControl(command, store, caller);
}

Result<std::unique_ptr<ControlServer>> ControlServer::open(asio::io_context& context,
                                                           const std::string& path,
                                                           store::Store& store) {
  auto address = parseListenAddress("unix:" + path);
  if (!address) return tl::unexpected(address.error());
  auto acceptor = bindListener(context, *address, UnixSocketOptions{"0600", "", ""}, 16);
  if (!acceptor) return tl::unexpected(acceptor.error());
  std::unique_ptr<ControlServer> server(new ControlServer(std::move(*acceptor), path, store));
  asio::co_spawn(context, server->acceptLoop(), asio::detached);
  return server;
}

ControlServer::ControlServer(Acceptor acceptor, std::string path, store::Store& store)
    : acceptor_(std::move(acceptor)), path_(std::move(path)), store_(store) {}

ControlServer::~ControlServer() {
  close();
}

void ControlServer::close() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(path_.c_str());
}

asio::awaitable<void> ControlServer::acceptLoop() {
  for (;;) {
    Socket socket(acceptor_.get_executor());
    boost::system::error_code ec;
    co_await acceptor_.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

static std::string peerName(Socket& socket) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    return "control:unknown";
  }
  const auto* pw = ::getpwuid(credentials.uid);
  return "control:" +
         (pw != nullptr ? std::string(pw->pw_name) : "uid" + std::to_string(credentials.uid));
}

asio::awaitable<void> ControlServer::serve(Socket socket) {
  const auto caller = peerName(socket);
  asio::streambuf buffer(kMaxCommandBytes);
  try {
    for (;;) {
      const auto n = co_await asio::async_read_until(socket, buffer, '\n', asio::use_awaitable);
      std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + n);
      buffer.consume(n);
      SASLGUARD_COUNT(control_requests_total);
      boost::system::error_code ec;
      auto parsed = json::parse(line, ec);
      json::object answer;
      if (ec || !parsed.is_object()) {
        answer = failure("a command is one JSON object on one line");
      } else {
        answer = co_await executeControlAsync(std::move(parsed.as_object()), store_, caller);
      }
      auto text = json::serialize(answer) + "\n";
      co_await asio::async_write(socket, asio::buffer(text), asio::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // peer closed, or a command over the size limit: nothing to clean up but the socket
  }
}

Result<json::object> controlRequest(const std::string& path, const json::object& command) {
  asio::io_context context;
  asio::local::stream_protocol::socket socket(context);
  boost::system::error_code ec;
  socket.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (ec) return fail("cannot reach the daemon at " + path + ": " + ec.message());
  const auto text = json::serialize(command) + "\n";
  asio::write(socket, asio::buffer(text), ec);
  if (ec) return fail("writing to " + path + ": " + ec.message());
  asio::streambuf buffer(16 * 1024 * 1024);
  const auto n = asio::read_until(socket, buffer, '\n', ec);
  if (ec) return fail("reading from " + path + ": " + ec.message());
  std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + n);
  auto parsed = json::parse(line, ec);
  if (ec || !parsed.is_object()) return fail("the daemon's answer is not a JSON object");
  return parsed.as_object();
}

}  // namespace saslguard::server
