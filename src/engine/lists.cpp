// lists.cpp — see lists.hpp.
#include "engine/lists.hpp"

#include "engine/identity.hpp"

namespace saslguard::engine {

Result<AllowLists> AllowLists::build(const config::ListsSettings& settings,
                                     const IdentityResolver& identity) {
  AllowLists lists;
  for (const auto& account : settings.allow_accounts) {
    lists.accounts_.insert(identity.normalise(account));
  }
  auto networks = NetworkList::parse(settings.allow_networks);
  if (!networks) return fail("lists.allow_networks: " + networks.error().message);
  lists.networks_ = std::move(*networks);
  return lists;
}

std::string_view AllowLists::match(const protocol::Request& request,
                                   const Identity& identity) const {
  if (!accounts_.empty() && accounts_.contains(identity.account)) return "account";
  if (!networks_.empty()) {
    if (auto address = parseAddress(request.get(protocol::Attr::client_address))) {
      if (networks_.contains(*address)) return "network";
    }
  }
  return {};
}

}  // namespace saslguard::engine
