// auth.cpp — see auth.hpp. Every configured secret is compared on every attempt (no early exit on
// the first match), so the time taken does not say which token was close.
#include "admin/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>

namespace saslguard::admin {

namespace {

std::string_view trimSpaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// Scheme names are case-insensitive (RFC 9110 §11.1).
bool startsWithScheme(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

Authenticator::Authenticator(const std::string& basic_user, const std::string& basic_password,
                             const std::vector<std::string>& bearer_tokens) {
  if (!basic_user.empty()) {
    has_basic_ = true;
    basic_user_ = basic_user;
    user_digest_ = digest(basic_user);
    password_digest_ = digest(basic_password);
  }
  for (const auto& token : bearer_tokens) {
    if (token.empty()) continue;
    token_digests_.push_back(digest(token));
    token_callers_.push_back("token:" + token.substr(0, 4) + "\u2026");
  }
}

Authenticator::Digest Authenticator::digest(std::string_view text) {
  Digest out;
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

bool Authenticator::equalDigests(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> Authenticator::authenticate(std::string_view header) const {
  header = trimSpaces(header);
  if (has_basic_ && startsWithScheme(header, "Basic")) {
    auto decoded = decodeBase64(trimSpaces(header.substr(6)));
    if (!decoded) return std::nullopt;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    // Both halves are always compared, so a right user with a wrong password takes as long as a
    // wrong user.
    const bool user_ok =
        equalDigests(digest(std::string_view(*decoded).substr(0, colon)), user_digest_);
    const bool password_ok =
        equalDigests(digest(std::string_view(*decoded).substr(colon + 1)), password_digest_);
    if (user_ok & password_ok) return basic_user_;
    return std::nullopt;
  }
  if (!token_digests_.empty() && startsWithScheme(header, "Bearer")) {
    const auto presented = digest(trimSpaces(header.substr(7)));
    std::optional<std::size_t> matched;
    for (std::size_t i = 0; i < token_digests_.size(); ++i) {
      if (equalDigests(presented, token_digests_[i]) && !matched) matched = i;
    }
    if (matched) return token_callers_[*matched];
  }
  return std::nullopt;
}

std::optional<std::string> decodeBase64(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string decoded;
  decoded.reserve(text.size() * 3 / 4);
  unsigned accumulator = 0;
  int bits = 0;
  for (const char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else {
      return std::nullopt;
    }
    accumulator = (accumulator << 6) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded += static_cast<char>((accumulator >> bits) & 0xFF);
    }
  }
  return decoded;
}

}  // namespace saslguard::admin
