// endpoint.cpp — see endpoint.hpp.
#include "server/endpoint.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <charconv>
#include <filesystem>

#include "config/checks.hpp"

namespace saslguard::server {

Result<ListenAddress> parseListenAddress(const std::string& text) {
  auto parsed = config::parseListenAddress(text);
  if (!parsed) return fail("listen address '" + text + "': " + parsed.error().message);
  ListenAddress address;
  address.text = text;
  if (parsed->kind == config::ListenAddress::Kind::kUnix) {
    address.is_unix = true;
    address.unix_path = parsed->path;
    address.endpoint = Protocol::endpoint(asio::local::stream_protocol::endpoint(parsed->path));
    return address;
  }
  // A host name is resolved once, at start; the first address wins.
  asio::io_context context;
  asio::ip::tcp::resolver resolver(context);
  boost::system::error_code ec;
  const auto results = resolver.resolve(parsed->host, std::to_string(parsed->port),
                                        asio::ip::tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return fail("listen address '" + text + "': cannot resolve '" + parsed->host + "'" +
                (ec ? ": " + ec.message() : ""));
  }
  address.endpoint = Protocol::endpoint(results.begin()->endpoint());
  return address;
}

static Result<void> applyUnixOptions(const std::string& path, const UnixSocketOptions& options) {
  unsigned mode = 0;
  auto [end, ec] =
      std::from_chars(options.mode.data(), options.mode.data() + options.mode.size(), mode, 8);
  if (ec != std::errc() || mode > 07777) return fail("bad unix socket mode '" + options.mode + "'");
  if (::chmod(path.c_str(), mode) != 0) {
    return fail("chmod " + path + ": " + std::strerror(errno));
  }
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!options.owner.empty()) {
    const auto* pw = ::getpwnam(options.owner.c_str());
    if (pw == nullptr) return fail("unix socket owner '" + options.owner + "' does not exist");
    uid = pw->pw_uid;
  }
  if (!options.group.empty()) {
    const auto* gr = ::getgrnam(options.group.c_str());
    if (gr == nullptr) return fail("unix socket group '" + options.group + "' does not exist");
    gid = gr->gr_gid;
  }
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
      ::chown(path.c_str(), uid, gid) != 0) {
    return fail("chown " + path + ": " + std::strerror(errno));
  }
  return {};
}

static bool someoneListens(asio::io_context& context, const ListenAddress& address) {
  Socket probe(context);
  boost::system::error_code ec;
  probe.connect(address.endpoint, ec);
  return !ec;
}

Result<Acceptor> bindListener(asio::io_context& context, const ListenAddress& address,
                              const UnixSocketOptions& unix_options, int backlog) {
  Acceptor acceptor(context);
  boost::system::error_code ec;
  if (address.is_unix && std::filesystem::exists(address.unix_path)) {
    if (someoneListens(context, address)) {
      return fail("listen " + address.text + ": another process is accepting on this socket");
    }
    std::filesystem::remove(address.unix_path, ec);
  }
  acceptor.open(address.endpoint.protocol(), ec);
  if (!ec && !address.is_unix) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(address.endpoint, ec);
  if (!ec) acceptor.listen(backlog, ec);
  if (ec) return fail("listen " + address.text + ": " + ec.message());
  if (address.is_unix) {
    auto applied = applyUnixOptions(address.unix_path, unix_options);
    if (!applied) return fail("listen " + address.text + ": " + applied.error().message);
  }
  return acceptor;
}

std::string describeLocal(const Acceptor& acceptor, const ListenAddress& address) {
  if (address.is_unix) return "unix:" + address.unix_path;
  boost::system::error_code ec;
  const auto local = acceptor.local_endpoint(ec);
  if (ec) return address.text;
  asio::ip::tcp::endpoint tcp;
  tcp.resize(local.size());
  std::memcpy(tcp.data(), local.data(), local.size());
  const auto ip = tcp.address();
  return (ip.is_v6() ? "[" + ip.to_string() + "]" : ip.to_string()) + ":" +
         std::to_string(tcp.port());
}

}  // namespace saslguard::server
