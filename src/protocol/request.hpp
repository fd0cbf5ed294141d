// request.hpp — one Postfix SMTPD access policy request as parsed: every attribute as a view into
// the connection's buffer (no copy per attribute), with O(1) access to the attributes Postfix
// defines. Unknown attributes are kept. Valid only until the connection's buffer moves on.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace saslguard::protocol {

// Postfix 3.7 sends these in this order; later versions add compatibility_level and mail_version.
// clang-format off
#define SASLGUARD_POLICY_ATTRIBUTES(X) \
  X(request) \
  X(protocol_state) \
  X(protocol_name) \
  X(client_address) \
  X(client_name) \
  X(client_port) \
  X(reverse_client_name) \
  X(server_address) \
  X(server_port) \
  X(helo_name) \
  X(sender) \
  X(recipient) \
  X(recipient_count) \
  X(queue_id) \
  X(instance) \
  X(size) \
  X(etrn_domain) \
  X(stress) \
  X(sasl_method) \
  X(sasl_username) \
  X(sasl_sender) \
  X(ccert_subject) \
  X(ccert_issuer) \
  X(ccert_fingerprint) \
  X(ccert_pubkey_fingerprint) \
  X(encryption_protocol) \
  X(encryption_cipher) \
  X(encryption_keysize) \
  X(policy_context) \
  X(compatibility_level) \
  X(mail_version)
// clang-format on

enum class Attr : std::uint8_t {
#define SASLGUARD_ATTR_ENUM(name) name,
  SASLGUARD_POLICY_ATTRIBUTES(SASLGUARD_ATTR_ENUM)
#undef SASLGUARD_ATTR_ENUM
      kCount
};
constexpr std::size_t kKnownAttributes = static_cast<std::size_t>(Attr::kCount);

std::string_view attributeName(Attr attr);

// The SMTP stage the request was made at (protocol_state).
enum class Stage : std::uint8_t {
  Unknown,
  Connect,
  Ehlo,
  Helo,
  Mail,
  Rcpt,
  Data,
  EndOfMessage,
  Vrfy,
  Etrn,
  Bdat
};
std::string_view stageName(Stage stage);
Stage parseStage(std::string_view protocol_state);

struct Attribute {
  std::string_view name;
  std::string_view value;
};

class Request {
 public:
  Request() { attributes_.reserve(40); }

  // The value of a Postfix attribute, empty when absent (as Postfix sends absent values).
  std::string_view get(Attr attr) const { return known_[static_cast<std::size_t>(attr)]; }
  bool has(Attr attr) const { return present_[static_cast<std::size_t>(attr)]; }
  // Any attribute by name, including unknown ones; empty when absent.
  std::string_view find(std::string_view name) const;
  const std::vector<Attribute>& attributes() const { return attributes_; }
  Stage stage() const { return parseStage(get(Attr::protocol_state)); }

  void clear();
  void add(std::string_view name, std::string_view value);

 private:
  std::array<std::string_view, kKnownAttributes> known_{};
  std::array<bool, kKnownAttributes> present_{};
  std::vector<Attribute> attributes_;
  std::size_t next_expected_ = 0;  // Postfix's fixed order makes the next name predictable
};

}  // namespace saslguard::protocol
