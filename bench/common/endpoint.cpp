// endpoint.cpp — parses the bench tools' address syntax; see endpoint.hpp.
// Host names go through the system resolver once at startup; "unix:" paths are taken verbatim.
#include "common/endpoint.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <charconv>
#include <cstring>

namespace saslguard::bench {

namespace asio = boost::asio;

Expected<Endpoint> parseEndpoint(std::string_view text) {
  constexpr std::string_view kUnixPrefix = "unix:";
  if (text.starts_with(kUnixPrefix)) {
    auto path = text.substr(kUnixPrefix.size());
    if (path.empty())
      return tl::unexpected("empty unix socket path in '" + std::string(text) + "'");
    asio::local::stream_protocol::endpoint local{std::string(path)};
    return Endpoint{asio::generic::stream_protocol::endpoint(local), false, std::string(text)};
  }

  std::string_view host, port_text;
  if (text.starts_with('[')) {  // [2001:db8::1]:10040
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return tl::unexpected("expected [address]:port, got '" + std::string(text) + "'");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return tl::unexpected("expected host:port or unix:/path, got '" + std::string(text) + "'");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return tl::unexpected("bad port '" + std::string(port_text) + "' in '" + std::string(text) +
                          "'");

  boost::system::error_code error;
  auto address = asio::ip::make_address(std::string(host), error);
  if (error) {  // a name: resolve it once
    asio::io_context context;
    asio::ip::tcp::resolver resolver(context);
    auto results = resolver.resolve(std::string(host), std::string(port_text), error);
    if (error || results.empty())
      return tl::unexpected("cannot resolve '" + std::string(host) + "': " + error.message());
    address = results.begin()->endpoint().address();
  }
  asio::ip::tcp::endpoint tcp(address, static_cast<unsigned short>(port));
  return Endpoint{asio::generic::stream_protocol::endpoint(tcp), true, std::string(text)};
}

std::string endpointText(const asio::generic::stream_protocol::endpoint& endpoint) {
  if (endpoint.protocol().family() == AF_UNIX) {
    asio::local::stream_protocol::endpoint local;
    local.resize(endpoint.size());
    std::memcpy(local.data(), endpoint.data(), endpoint.size());
    return "unix:" + local.path();
  }
  asio::ip::tcp::endpoint tcp;
  tcp.resize(endpoint.size());
  std::memcpy(tcp.data(), endpoint.data(), endpoint.size());
  if (tcp.address().is_v6())
    return "[" + tcp.address().to_string() + "]:" + std::to_string(tcp.port());
  return tcp.address().to_string() + ":" + std::to_string(tcp.port());
}

}  // namespace saslguard::bench
