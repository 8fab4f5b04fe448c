// Resource limits of this process, which a QEMU started from it inherits.
#pragma once

#include <cstdint>
#include <optional>

#include "host/host_fs.h"

namespace pcipass {

// "Max locked memory" of /proc/self/limits: VFIO pins all guest RAM, so it must cover it.
struct MemlockLimit {
  std::optional<uint64_t> soft, hard;  // bytes; nullopt means unlimited
};

// An Error names /proc/self/limits when it cannot be read, lacks the line, or holds a value that
// is not "unlimited" or a byte count up to 2^64-1.
Result<MemlockLimit> read_memlock_limit(const HostFs& fs);

}  // namespace pcipass
