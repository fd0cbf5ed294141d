// network.cpp — see network.hpp. IPv4-mapped IPv6 client addresses match IPv4 networks.
#include "common/network.hpp"

#include <charconv>
#include <string>

namespace saslguard {

namespace ip = boost::asio::ip;

static ip::address unmap(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

// A dotted quad exactly as inet_pton accepts it (four decimal octets up to 255, no leading
// zeros); anything else is left to make_address. client_address is parsed on every request, and
// make_address copies the text and tries IPv6 first (a fifth of Pipeline::decide in callgrind).
static std::optional<ip::address_v4> parseDottedQuad(std::string_view text) {
  ip::address_v4::bytes_type bytes{};
  std::size_t i = 0;
  for (std::size_t octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (i == text.size() || text[i] != '.') return std::nullopt;
      ++i;
    }
    const std::size_t start = i;
    unsigned value = 0;
    while (i < text.size() && i - start < 3 && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    const std::size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0')) return std::nullopt;
    bytes[octet] = static_cast<unsigned char>(value);
  }
  if (i != text.size()) return std::nullopt;
  return ip::address_v4(bytes);
}

std::optional<ip::address> parseAddress(std::string_view text) {
  if (const auto v4 = parseDottedQuad(text)) return ip::address(*v4);
  boost::system::error_code ec;
  auto address = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return unmap(address);
}

template <std::size_t N>
static bool prefixMatches(const std::array<unsigned char, N>& a,
                          const std::array<unsigned char, N>& b, unsigned bits) {
  std::size_t full = bits / 8;
  for (std::size_t i = 0; i < full; ++i) {
    if (a[i] != b[i]) return false;
  }
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

bool Network::contains(const ip::address& candidate) const {
  const auto address = unmap(candidate);
  if (address.is_v4() != base.is_v4()) return false;
  if (address.is_v4()) {
    return prefixMatches(address.to_v4().to_bytes(), base.to_v4().to_bytes(), prefix_length);
  }
  return prefixMatches(address.to_v6().to_bytes(), base.to_v6().to_bytes(), prefix_length);
}

Result<Network> parseNetwork(std::string_view text) {
  const auto slash = text.find('/');
  const auto addressText = text.substr(0, slash);
  auto address = parseAddress(addressText);
  if (!address) return fail("not an IP address: '" + std::string(addressText) + "'");
  const unsigned maxBits = address->is_v4() ? 32 : 128;
  unsigned bits = maxBits;
  if (slash != std::string_view::npos) {
    const auto lengthText = text.substr(slash + 1);
    auto [end, ec] =
        std::from_chars(lengthText.data(), lengthText.data() + lengthText.size(), bits);
    if (ec != std::errc() || end != lengthText.data() + lengthText.size() || bits > maxBits) {
      return fail("bad prefix length in '" + std::string(text) + "'");
    }
  }
  return Network{*address, bits};
}

Result<NetworkList> NetworkList::parse(const std::vector<std::string>& entries) {
  NetworkList list;
  for (const auto& entry : entries) {
    auto network = parseNetwork(entry);
    if (!network) return tl::unexpected(network.error());
    list.networks_.push_back(*network);
  }
  return list;
}

bool NetworkList::contains(const ip::address& address) const {
  for (const auto& network : networks_) {
    if (network.contains(address)) return true;
  }
  return false;
}

}  // namespace saslguard
