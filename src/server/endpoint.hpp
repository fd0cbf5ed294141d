// endpoint.hpp — listening addresses as the configuration spells them ("127.0.0.1:10040",
// "[::1]:10040", "unix:/path") and the bound acceptors, TCP and unix sockets alike.
#pragma once

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <string>

#include "common/result.hpp"

namespace saslguard::server {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using Socket = Protocol::socket;
using Acceptor = asio::basic_socket_acceptor<Protocol>;

struct ListenAddress {
  std::string text;  // as configured
  bool is_unix = false;
  std::string unix_path;  // for unix sockets
  Protocol::endpoint endpoint;
};

Result<ListenAddress> parseListenAddress(const std::string& text);

struct UnixSocketOptions {
  std::string mode = "0660";
  std::string owner;
  std::string group;
};

// Binds and listens. A stale unix socket file (no one accepting on it) is replaced; a live one
// is an error, so two daemons never steal each other's socket.
Result<Acceptor> bindListener(asio::io_context& context, const ListenAddress& address,
                              const UnixSocketOptions& unix_options, int backlog = 1024);

// The address actually bound (resolves port 0), e.g. "127.0.0.1:43211" or "unix:/path".
std::string describeLocal(const Acceptor& acceptor, const ListenAddress& address);

}  // namespace saslguard::server
