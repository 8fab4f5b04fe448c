// USER[:GROUP] for `bind --owner`, resolved from ROOT/etc/passwd and ROOT/etc/group through
// HostFs (not getpwnam: the view may be a captured tree, and NSS modules are not wanted here).
#pragma once

#include <sys/types.h>

#include <string>

#include "host/host_fs.h"

namespace pcipass::assign {

struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user, group;  // names as found ("" for numeric ids not in the files)
};

// "qemu", "qemu:kvm", "107:36", "qemu:" ; without GROUP the user's primary group.
Result<Account> resolve_owner(const HostFs& fs, const std::string& spec);

}  // namespace pcipass::assign
