// auth.hpp — checks the Authorization header of an admin request against the configured HTTP Basic
// credentials and bearer tokens. Comparisons run in constant time over SHA-256 digests, so neither
// the content nor the length of a secret leaks through timing.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace saslguard::admin {

class Authenticator {
 public:
  Authenticator(const std::string& basic_user, const std::string& basic_password,
                const std::vector<std::string>& bearer_tokens);

  // False when neither basic credentials nor a token is configured: every request is let in.
  bool required() const { return has_basic_ || !token_digests_.empty(); }

  // The caller's name for the log and Request::caller ("alice", "token:abcd…"), or nullopt when the
  // header does not carry valid credentials. Never call with required() false.
  std::optional<std::string> authenticate(std::string_view authorization_header) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest digest(std::string_view text);
  static bool equalDigests(const Digest& a, const Digest& b);

  bool has_basic_ = false;
  std::string basic_user_;  // kept for Request::caller; the comparison uses the digest
  Digest user_digest_{};
  Digest password_digest_{};
  std::vector<Digest> token_digests_;
  std::vector<std::string> token_callers_;  // "token:abcd…", parallel to token_digests_
};

// Standard base64 (RFC 4648, padding optional); nullopt on a character outside the alphabet.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace saslguard::admin
