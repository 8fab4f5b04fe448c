// Host readiness for PCI passthrough: one result per requirement, PASS / WARN / FAIL, each
// non-PASS with the exact fix. Everything is read through HostFs, so `--root DIR` checks a
// captured tree. The checks, their ids and what each reads are listed in docs/checks.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "host/modules.h"

namespace pcipass {

enum class CheckStatus { kPass, kWarn, kFail };
// "PASS", "WARN", "FAIL".
const char* check_status_name(CheckStatus s);

struct CheckResult {
  std::string id;     // stable, e.g. "iommu-kernel" (docs/checks.md)
  std::string title;  // "IOMMU in the kernel"
  CheckStatus status = CheckStatus::kPass;
  std::string detail;  // what was found, one short line
  std::string fix;     // what to do about it; empty for PASS
};

struct CheckReport {
  std::vector<CheckResult> results;
  // FAIL > WARN > PASS; PASS for an empty report.
  CheckStatus worst() const;
  // The result with this id; nullptr when absent.
  const CheckResult* find(const std::string& id) const;
};

// Stable ids, in the order run_checks() reports them.
inline constexpr const char* kCheckIds[] = {
    "cpu-virtualization",
    "kvm-module",
    "kvm-device",
    "iommu-firmware",
    "iommu-kernel",
    "kernel-cmdline",
    "interrupt-remapping",
    "unsafe-interrupts",
    "vfio-module",
    "vfio-iommu-type1-module",
    "vfio-pci-module",
    "vfio-device",
    "memlock",
    "libraries",
};

// The libraries pcipass loads on first use, as this process could load them: nullopt, or the
// error naming the library and the package that provides it.
// The libraries pcipass loads on first use, as far as `check` needed them. Loading one costs a
// call tens of milliseconds under TCG (libkmod brings libcrypto), so check loads libkmod only for
// a module question that /proc/modules and modules.builtin do not answer, and never libpci
// (list and show say when names are unavailable).
struct Libraries {
  std::optional<Error> kmod;  // libkmod: the module index, loading vfio-pci
  std::optional<Error> pci;   // libpci: vendor and device names
  bool kmod_needed = true;    // false: every module was loaded or built in
  bool pci_needed = true;
};

CheckReport run_checks(const HostFs& fs, const ModuleIndex& modules);
// The same with the libraries' state given (tests).
CheckReport run_checks(const HostFs& fs, const ModuleIndex& modules, const Libraries& libs);

}  // namespace pcipass
