// http_server.hpp — the admin HTTP/1.1 server (Boost.Beast, optionally over TLS) that runs on the
// daemon's main io_context and hands authenticated requests to a Router. Binding anything but
// loopback without credentials is refused, so the API is never open to the network by accident.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "admin/router.hpp"
#include "common/result.hpp"

namespace saslguard::admin {

struct AdminOptions {
  std::string listen = "127.0.0.1:8080";  // host:port or [v6]:port; "localhost" means 127.0.0.1
  std::string tls_cert_file;              // both files set: HTTPS; neither: plain HTTP
  std::string tls_key_file;
  std::string basic_user;  // empty: no HTTP Basic
  std::string basic_password;
  std::vector<std::string> bearer_tokens;
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds read_timeout{10000};   // a request (or TLS handshake) that never ends
  std::chrono::milliseconds write_timeout{30000};  // a client that stops reading its response
  std::chrono::milliseconds idle_timeout{60000};   // between requests on a kept-alive connection
  std::size_t max_connections = 64;                // beyond: accepted and closed at once
};

struct AdminCounters {
  std::size_t requests = 0;
  std::size_t auth_failures = 0;
  std::size_t connections_refused = 0;  // max_connections reached
  std::size_t timeouts = 0;             // read, idle or write timeout closed a connection
};

class AdminServer {
 public:
  // Binds and listens, then serves on `context` (which the caller runs). The router's handlers run
  // on that thread too, so they must be quick and never block. Fails when the address is not
  // loopback and no credentials are configured, when the address cannot be bound, or when a TLS
  // file cannot be read.
  static Result<std::unique_ptr<AdminServer>> start(boost::asio::io_context& context,
                                                    AdminOptions options, Router router);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  unsigned short port() const;  // the bound port (useful after listening on port 0)

  // Closes the listener and every open connection. Call on the io_context's thread, or while it is
  // not running.
  void stop();

  // Read on the io_context's thread (or while it is not running).
  AdminCounters counters() const;

  // Shared with the connections' coroutines, which may outlive this object.
  struct State;

 private:
  explicit AdminServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

using AdminServerPtr = std::unique_ptr<AdminServer>;

// True for 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and "localhost".
bool isLoopbackHost(const std::string& host);

}  // namespace saslguard::admin
