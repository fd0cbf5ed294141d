// identity.hpp — step 1 of the pipeline: which account a request belongs to. sasl_username by
// default, the sender address as an option; lower-cased and trimmed; optional domain stripping.
#pragma once

#include <optional>

#include "config/settings.hpp"
#include "engine/verdict.hpp"
#include "protocol/request.hpp"

namespace saslguard::engine {

class IdentityResolver {
 public:
  explicit IdentityResolver(const config::IdentitySettings& settings);
  // nullopt: the request is not ours to judge (no login, or nothing to identify it by).
  std::optional<Identity> resolve(const protocol::Request& request) const;

  // The normal form of an account name as the store and operators see it.
  std::string normalise(std::string_view raw) const;

 private:
  bool use_sender_;
  bool strip_domain_;
  bool evaluate_unauthenticated_;
};

}  // namespace saslguard::engine
