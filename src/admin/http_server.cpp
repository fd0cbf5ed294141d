// http_server.cpp — see http_server.hpp. One coroutine per connection reads a request, checks the
// credentials, lets the Router answer and writes the reply, with a deadline on every wait so a slow
// or silent client only ever holds its own connection.
#include "admin/http_server.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>

#include "admin/auth.hpp"
#include "common/log.hpp"

namespace saslguard::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct AdminServer::State {
  State(asio::io_context& io, AdminOptions opts, Router table)
      : context(io),
        options(std::move(opts)),
        router(std::move(table)),
        authenticator(options.basic_user, options.basic_password, options.bearer_tokens),
        acceptor(io) {}

  asio::io_context& context;
  const AdminOptions options;
  const Router router;
  const Authenticator authenticator;
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor;
  unsigned short port = 0;
  bool stopping = false;
  std::size_t open_connections = 0;
  std::uint64_t next_connection_id = 0;
  std::map<std::uint64_t, beast::tcp_stream*> connections;  // for stop()
  AdminCounters counters;
};

namespace {

using StatePtr = std::shared_ptr<AdminServer::State>;

struct ListenAddress {
  std::string host;
  unsigned short port = 0;
};

Result<ListenAddress> splitListen(const std::string& listen) {
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find("]:");
    if (close == std::string::npos)
      return fail("admin listen \"" + listen + "\": expected [v6]:port");
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || listen.find(':') != colon) {
      return fail("admin listen \"" + listen + "\": expected host:port or [v6]:port");
    }
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(port_text, &used);
    if (used != port_text.size() || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return fail("admin listen \"" + listen + "\": bad port \"" + port_text + "\"");
  }
  return ListenAddress{host, static_cast<unsigned short>(port)};
}

Result<asio::ip::address> resolveHost(const std::string& host, const std::string& listen) {
  if (host == "localhost") return asio::ip::address(asio::ip::address_v4::loopback());
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return fail("admin listen \"" + listen + "\": \"" + host + "\" is not an IP address");
  return address;
}

Result<void> loadTls(asio::ssl::context& tls, const AdminOptions& options) {
  for (const auto* file : {&options.tls_cert_file, &options.tls_key_file}) {
    std::ifstream probe(*file);
    if (!probe) return fail("cannot read TLS file " + *file + ": " + std::strerror(errno));
  }
  boost::system::error_code ec;
  tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1,
                  ec);
  tls.use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) return fail("TLS certificate file " + options.tls_cert_file + ": " + ec.message());
  tls.use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) return fail("TLS key file " + options.tls_key_file + ": " + ec.message());
  return {};
}

// Keeps the connection count and the list stop() closes in step with the coroutine's life.
class ConnectionRegistration {
 public:
  ConnectionRegistration(AdminServer::State& state, beast::tcp_stream& stream)
      : state_(state), id_(state.next_connection_id++) {
    state_.connections.emplace(id_, &stream);
  }
  ~ConnectionRegistration() {
    state_.connections.erase(id_);
    --state_.open_connections;
  }
  ConnectionRegistration(const ConnectionRegistration&) = delete;
  ConnectionRegistration& operator=(const ConnectionRegistration&) = delete;

 private:
  AdminServer::State& state_;
  std::uint64_t id_;
};

std::string peerName(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// Checks the credentials and runs the route. `caller` is filled for the log line.
asio::awaitable<Response> respond(AdminServer::State& state,
                                  http::request<http::string_body>& message,
                                  const std::string& peer, std::string& caller) {
  ++state.counters.requests;
  if (state.authenticator.required()) {
    auto who = state.authenticator.authenticate(message[http::field::authorization]);
    if (!who) {
      ++state.counters.auth_failures;
      if (log::peerWarningAllowed()) {
        // The path only: a query string may carry values that do not belong in a log.
        spdlog::warn("admin API: authentication failed from {} ({} {})", peer,
                     std::string(message.method_string()),
                     std::string(message.target().substr(0, message.target().find('?'))));
      }
      auto response = Response::error(401, "authentication required");
      response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"saslguard\"");
      co_return response;
    }
    caller = std::move(*who);
  }
  Request request;
  request.method = std::string(message.method_string());
  const std::string_view target = message.target();
  const auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = parseQuery(target.substr(question + 1));
  request.body = std::move(message.body());
  request.content_type = std::string(message[http::field::content_type]);
  request.caller = caller;
  try {
    co_return co_await state.router.dispatchAsync(request);
  } catch (const std::exception& e) {
    // A handler bug must not take the daemon's event loop down with it.
    spdlog::error("admin API: handler for {} {} failed: {}", request.method, request.path,
                  e.what());
  }
  co_return Response::error(500, "internal error");
}

http::response<http::string_body> toMessage(Response response, unsigned version, bool keep_alive) {
  http::response<http::string_body> message;
  message.version(version);
  message.result(response.status);
  message.set(http::field::server, "saslguard");
  message.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) message.insert(name, value);
  message.body() = std::move(response.body);
  message.keep_alive(keep_alive);
  message.prepare_payload();
  return message;
}

// After refusing a request whose body is still arriving, read and drop what the client sends for a
// moment: closing with unread data makes the kernel reset the connection, and the client would lose
// the error response before reading it.
asio::awaitable<void> lingerAndDiscard(beast::tcp_stream& lowest, std::chrono::milliseconds limit) {
  boost::system::error_code ec;
  lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
  lowest.expires_after(std::min<std::chrono::milliseconds>(limit, std::chrono::seconds(2)));
  std::array<char, 16384> sink;
  while (!ec) {
    co_await lowest.async_read_some(asio::buffer(sink),
                                    asio::redirect_error(asio::use_awaitable, ec));
  }
}

template <class Stream>
asio::awaitable<void> serveRequests(AdminServer::State& state, Stream& stream,
                                    const std::string& peer) {
  const auto& options = state.options;
  auto& lowest = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  for (bool first = true; !state.stopping; first = false) {
    if (buffer.size() == 0) {
      // Between requests the idle timeout applies; a new connection that says nothing is a request
      // that never completes, so it gets the read timeout.
      lowest.expires_after(first ? options.read_timeout : options.idle_timeout);
      const auto received = co_await stream.async_read_some(
          buffer.prepare(4096), asio::redirect_error(asio::use_awaitable, ec));
      if (ec == beast::error::timeout) ++state.counters.timeouts;
      if (ec) co_return;
      buffer.commit(received);
    }
    const auto started = Clock::now();
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    lowest.expires_after(options.read_timeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec == beast::error::timeout) ++state.counters.timeouts;
    const bool malformed =
        ec && ec.category() == http::make_error_code(http::error::end_of_stream).category();
    if (ec &&
        (!malformed || ec == http::error::end_of_stream || ec == http::error::partial_message)) {
      co_return;  // gone, timed out or a transport error: nobody to answer
    }
    std::string caller;
    bool keep_alive = false;
    unsigned version = 11;
    Response response;
    std::string method = "-";
    std::string path = "-";
    if (parser.is_header_done()) {  // also for a refused body: the log line says what it was for
      method = std::string(parser.get().method_string());
      path = std::string(parser.get().target().substr(0, parser.get().target().find('?')));
    }
    if (ec == http::error::body_limit) {
      response = Response::error(413, "request body too large");
    } else if (ec == http::error::header_limit) {
      response = Response::error(431, "request header too large");
    } else if (ec) {
      response = Response::error(400, "malformed request");
    } else {
      auto& message = parser.get();
      version = message.version();
      keep_alive = message.keep_alive();
      response = co_await respond(state, message, peer, caller);
    }
    keep_alive = keep_alive && !state.stopping;
    const unsigned status = response.status;
    auto reply = toMessage(std::move(response), version, keep_alive);
    lowest.expires_after(options.write_timeout);
    boost::system::error_code write_error;
    co_await http::async_write(stream, reply,
                               asio::redirect_error(asio::use_awaitable, write_error));
    spdlog::debug(
        "admin {} {} {} caller={} peer={} {}ms", method, path, status,
        caller.empty() ? "-" : caller, peer,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    if (write_error == beast::error::timeout) ++state.counters.timeouts;
    if (write_error) co_return;
    if (ec) {
      co_await lingerAndDiscard(lowest, options.read_timeout);
      co_return;
    }
    if (!keep_alive) co_return;
  }
}

asio::awaitable<void> serveConnection(StatePtr state, tcp::socket socket) {
  const auto peer = peerName(socket);
  boost::system::error_code ec;
  if (state->tls) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *state->tls);
    ConnectionRegistration registration(*state, beast::get_lowest_layer(stream));
    beast::get_lowest_layer(stream).expires_after(state->options.read_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::debug("admin API: TLS handshake with {} failed: {}", peer, ec.message());
      co_return;
    }
    co_await serveRequests(*state, stream, peer);
    beast::get_lowest_layer(stream).expires_after(state->options.write_timeout);
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  } else {
    beast::tcp_stream stream(std::move(socket));
    ConnectionRegistration registration(*state, stream);
    co_await serveRequests(*state, stream, peer);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
}

asio::awaitable<void> acceptLoop(StatePtr state) {
  for (;;) {
    tcp::socket socket(state->context);
    boost::system::error_code ec;
    co_await state->acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (state->stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors and the like: say so, breathe, go on accepting.
      spdlog::warn("admin API: accept failed: {}", ec.message());
      asio::steady_timer pause(state->context, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (state->open_connections >= state->options.max_connections) {
      ++state->counters.connections_refused;
      if (log::peerWarningAllowed()) {
        spdlog::warn("admin API: connection refused, max_connections ({}) reached",
                     state->options.max_connections);
      }
      socket.close(ec);
      continue;
    }
    ++state->open_connections;  // given back by the connection's
                                // ConnectionRegistration
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(state->context, serveConnection(state, std::move(socket)), asio::detached);
  }
}

}  // namespace

bool isLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return false;
  if (address.is_v4()) return address.to_v4().is_loopback();
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

Result<std::unique_ptr<AdminServer>> AdminServer::start(asio::io_context& context,
                                                        AdminOptions options, Router router) {
  auto listen = splitListen(options.listen);
  if (!listen) return fail(listen.error().message);
  auto address = resolveHost(listen->host, options.listen);
  if (!address) return fail(address.error().message);
  if (!options.basic_user.empty() && options.basic_password.empty()) {
    return fail("admin API: basic_user is set but basic_password is empty");
  }
  auto state = std::make_shared<State>(context, std::move(options), std::move(router));
  const auto& settings = state->options;
  if (!isLoopbackHost(listen->host) && !state->authenticator.required()) {
    return fail("admin API on " + settings.listen +
                " is reachable beyond loopback: configure authentication "
                "(basic_user and "
                "basic_password, or a bearer token) or listen on 127.0.0.1");
  }
  if (settings.tls_cert_file.empty() != settings.tls_key_file.empty()) {
    return fail(
        "admin API: set both tls_cert_file and tls_key_file for HTTPS, "
        "or neither");
  }
  if (!settings.tls_cert_file.empty()) {
    state->tls.emplace(asio::ssl::context::tls_server);
    if (auto loaded = loadTls(*state->tls, settings); !loaded) return fail(loaded.error().message);
  }

  const tcp::endpoint endpoint(*address, listen->port);
  boost::system::error_code ec;
  auto& acceptor = state->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("admin API: cannot listen on " + settings.listen + ": " + ec.message());
  state->port = acceptor.local_endpoint(ec).port();

  asio::co_spawn(context, acceptLoop(state), asio::detached);
  spdlog::info("admin API listening on {} ({}{})", settings.listen, state->tls ? "https" : "http",
               state->authenticator.required() ? ", authentication required" : "");
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(state)));
}

AdminServer::~AdminServer() {
  stop();
}

unsigned short AdminServer::port() const {
  return state_->port;
}

AdminCounters AdminServer::counters() const {
  return state_->counters;
}

void AdminServer::stop() {
  state_->stopping = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  // Copied: closing completes the connections' waits later, and they unregister themselves.
  const auto connections = state_->connections;
  for (const auto& [id, stream] : connections) stream->close();
}

}  // namespace saslguard::admin
