// dns_names.cpp — the names DNSBL queries are made of: reversed IP addresses (the octets of
// IPv4, the nibbles of IPv6) and SHA-1 hex digests of e-mail addresses (hashed recipient zones).
#include <arpa/inet.h>
#include <openssl/evp.h>

#include <array>
#include <cstring>

#include "enrich/dns.hpp"

namespace saslguard::enrich {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::optional<std::string> reversedAddress(std::string_view address) {
  // inet_pton wants a terminated string; nothing longer than this is a valid address.
  std::array<char, INET6_ADDRSTRLEN + 1> text{};
  if (address.empty() || address.size() >= text.size()) return std::nullopt;
  std::memcpy(text.data(), address.data(), address.size());

  std::array<unsigned char, 16> bytes{};
  if (::inet_pton(AF_INET, text.data(), bytes.data()) == 1) {
    std::string out;
    out.reserve(15);
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(bytes[static_cast<std::size_t>(i)]);
      if (i > 0) out += '.';
    }
    return out;
  }
  if (::inet_pton(AF_INET6, text.data(), bytes.data()) == 1) {
    std::string out;
    out.reserve(63);
    for (int i = 15; i >= 0; --i) {
      const unsigned char byte = bytes[static_cast<std::size_t>(i)];
      out += kHexDigits[byte & 0x0f];
      out += '.';
      out += kHexDigits[byte >> 4];
      if (i > 0) out += '.';
    }
    return out;
  }
  return std::nullopt;
}

std::string sha1Hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha1(), nullptr) != 1) {
    fatal("OpenSSL cannot compute SHA-1");  // only without a usable libcrypto: not recoverable
  }
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += kHexDigits[digest[i] >> 4];
    out += kHexDigits[digest[i] & 0x0f];
  }
  return out;
}

}  // namespace saslguard::enrich
