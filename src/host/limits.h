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

// nullopt when the line is missing or malformed.
std::optional<MemlockLimit> read_memlock_limit(const HostFs& fs);

}  // namespace pcipass
