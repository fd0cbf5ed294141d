// privileges.hpp — drops root privileges to the configured user and group after the listeners
// are bound (so a unix socket under the Postfix chroot or a low port can still be opened).
#pragma once

#include <string>

#include "common/result.hpp"

namespace saslguard::server {

// No-op when both are empty. Requires root when they name another identity.
Result<void> dropPrivileges(const std::string& user, const std::string& group);

}  // namespace saslguard::server
