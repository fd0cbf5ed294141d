// lists.hpp — step 2 of the pipeline: allow lists that take a request out of evaluation
// entirely (service accounts, trusted networks). Deny lists are a detector (detectors/denylist).
#pragma once

#include <string>
#include <unordered_set>

#include "common/network.hpp"
#include "config/settings.hpp"
#include "engine/verdict.hpp"
#include "protocol/request.hpp"

namespace saslguard::engine {

class AllowLists {
 public:
  static Result<AllowLists> build(const config::ListsSettings& settings,
                                  const class IdentityResolver& identity);
  // The list that matched ("account", "network"), or empty.
  std::string_view match(const protocol::Request& request, const Identity& identity) const;

 private:
  std::unordered_set<std::string> accounts_;
  NetworkList networks_;
};

}  // namespace saslguard::engine
