// privileges.cpp — see privileges.hpp. Order matters: supplementary groups, then the group, then
// the user; and a final check that root cannot be regained.
#include "server/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace saslguard::server {

Result<void> dropPrivileges(const std::string& user, const std::string& group,
                            const std::string& owned_directory) {
  if (user.empty() && group.empty()) return {};
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  const passwd* pw = nullptr;
  if (!user.empty()) {
    pw = ::getpwnam(user.c_str());
    if (pw == nullptr) return fail("server.user '" + user + "' does not exist");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  if (!group.empty()) {
    const auto* gr = ::getgrnam(group.c_str());
    if (gr == nullptr) return fail("server.group '" + group + "' does not exist");
    gid = gr->gr_gid;
  }
  if (::geteuid() != 0) {
    if (uid == ::geteuid() && gid == ::getegid()) return {};
    return fail("server.user/server.group need the daemon to start as root");
  }
  if (!owned_directory.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(owned_directory, ec);
    if (ec) return fail("creating " + owned_directory + ": " + ec.message());
    if (::chown(owned_directory.c_str(), uid, gid) != 0) {
      return fail("chown " + owned_directory + ": " + std::strerror(errno));
    }
  }
  if (pw != nullptr ? ::initgroups(pw->pw_name, gid) != 0 : ::setgroups(0, nullptr) != 0) {
    return fail(std::string("setting supplementary groups: ") + std::strerror(errno));
  }
  if (::setgid(gid) != 0) return fail(std::string("setgid: ") + std::strerror(errno));
  if (::setuid(uid) != 0) return fail(std::string("setuid: ") + std::strerror(errno));
  if (uid != 0 && ::setuid(0) == 0)
    return fail("privileges could not be dropped (setuid(0) works)");
  return {};
}

}  // namespace saslguard::server
