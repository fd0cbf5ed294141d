// identity.cpp — see identity.hpp.
#include "engine/identity.hpp"

#include "common/strings.hpp"

namespace saslguard::engine {

using protocol::Attr;

IdentityResolver::IdentityResolver(const config::IdentitySettings& settings)
    : use_sender_(settings.source == "sender"),
      strip_domain_(settings.strip_domain),
      evaluate_unauthenticated_(settings.unauthenticated == "evaluate") {}

std::string IdentityResolver::normalise(std::string_view raw) const {
  auto account = toLowerAscii(trim(raw));
  if (strip_domain_) {
    const auto at = account.find('@');
    if (at != std::string::npos) account.resize(at);
  }
  return account;
}

std::optional<Identity> IdentityResolver::resolve(const protocol::Request& request) const {
  const auto login = trim(request.get(Attr::sasl_username));
  const bool authenticated = !login.empty();
  if (!authenticated && !evaluate_unauthenticated_) return std::nullopt;
  const auto raw = use_sender_ ? trim(request.get(Attr::sender)) : login;
  if (raw.empty()) return std::nullopt;  // e.g. a bounce (null sender) in sender mode
  Identity identity{normalise(raw), authenticated};
  if (identity.account.empty()) return std::nullopt;
  return identity;
}

}  // namespace saslguard::engine
