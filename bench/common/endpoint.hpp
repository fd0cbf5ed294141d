// endpoint.hpp — the "host:port" / "[v6]:port" / "unix:/path" address syntax shared by the load
// generator (--target) and the baseline server (--listen), resolved to one generic stream endpoint.
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace saslguard::bench {

template <class T>
using Expected = tl::expected<T, std::string>;  // the error is a message fit for one line

struct Endpoint {
  boost::asio::generic::stream_protocol::endpoint address;
  bool is_tcp = false;  // TCP_NODELAY applies; a unix socket has no port
  std::string text;     // as the operator wrote it, for messages
};

// Resolves host names once, synchronously (startup only; nothing on the hot path resolves).
Expected<Endpoint> parseEndpoint(std::string_view text);

// The bound address as text ("127.0.0.1:34567", "[::1]:10041", "unix:/run/x.sock").
std::string endpointText(const boost::asio::generic::stream_protocol::endpoint& endpoint);

}  // namespace saslguard::bench
