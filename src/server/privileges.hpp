// privileges.hpp — drops root privileges to the configured user and group after the listeners
// are bound (so a unix socket under the Postfix chroot or a low port can still be opened).
#pragma once

#include <string>

#include "common/result.hpp"

namespace saslguard::server {

// No-op when both are empty. Requires root when they name another identity. When running as
// root, `owned_directory` is created if missing and handed to that user and group first, so the
// state directory is writable after the drop.
Result<void> dropPrivileges(const std::string& user, const std::string& group,
                            const std::string& owned_directory = {});

}  // namespace saslguard::server
