// network.hpp — IP addresses and CIDR networks for allow/deny lists and ignore networks.
// Parsing is strict (a bad entry is a configuration error, never silently ignored).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace saslguard {

struct Network {
  boost::asio::ip::address base;
  unsigned prefix_length = 0;

  bool contains(const boost::asio::ip::address& address) const;
};

// "192.0.2.0/24", "2001:db8::/32" or a single address (a /32 or /128).
Result<Network> parseNetwork(std::string_view text);
std::optional<boost::asio::ip::address> parseAddress(std::string_view text);

class NetworkList {
 public:
  static Result<NetworkList> parse(const std::vector<std::string>& entries);
  bool contains(const boost::asio::ip::address& address) const;
  bool empty() const { return networks_.empty(); }

 private:
  std::vector<Network> networks_;
};

}  // namespace saslguard
