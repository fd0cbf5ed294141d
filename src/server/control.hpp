// control.hpp — the local control socket (a unix socket in the state directory, mode 0600) through
// which `saslguard accounts ...` talks to a running daemon: one JSON object per line each way.
// The peer's uid (SO_PEERCRED) is recorded as who cleared a mark.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <string>

#include "common/result.hpp"
#include "server/endpoint.hpp"
#include "store/store.hpp"
#include "store/store_json.hpp"

namespace saslguard::server {

using store::accountViewToJson;
using store::markToJson;

// Executes one control command against `store`. `caller` names who asked (for the audit trail).
boost::json::object executeControl(const boost::json::object& command, store::Store& store,
                                   const std::string& caller);
// The same on an event loop (the daemon's control socket): registry changes are awaited, so a
// Redis store that does not answer holds this command, not the loop.
asio::awaitable<boost::json::object> executeControlAsync(boost::json::object command,
                                                         store::Store& store, std::string caller);

class ControlServer {
 public:
  static Result<std::unique_ptr<ControlServer>> open(asio::io_context& context,
                                                     const std::string& path, store::Store& store);
  ~ControlServer();
  void close();

 private:
  ControlServer(Acceptor acceptor, std::string path, store::Store& store);
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> serve(Socket socket);

  Acceptor acceptor_;
  std::string path_;
  store::Store& store_;
};

// Client side: sends one command, returns the daemon's answer.
Result<boost::json::object> controlRequest(const std::string& path,
                                           const boost::json::object& command);

}  // namespace saslguard::server
