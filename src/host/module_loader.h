// Loading a driver's kernel module before binding: the live host through libkmod; tests inject
// a fake that registers the driver in their sysfs double.
#pragma once

#include <memory>
#include <string>

#include "host/context.h"
#include "host/host_fs.h"
#include "util/result.h"

namespace pcipass {

class ModuleLoader {
 public:
  virtual ~ModuleLoader() = default;
  // Loads `module` ("vfio_pci", "pci_stub") and its dependencies, as `modprobe` would.
  virtual Status load(const std::string& module) = 0;
};

// libkmod's kmod_module_probe_insert_module on the running kernel when the process's view is the
// live host (ProcessContext::live); otherwise a loader that refuses: a captured tree has no
// kernel to load modules into. `fs` only names the tree in that refusal.
std::unique_ptr<ModuleLoader> make_kmod_loader(const ProcessContext& process, const HostFs& fs);

// The module providing a PCI driver: "vfio-pci" -> "vfio_pci".
std::string module_for_driver(const std::string& driver);

}  // namespace pcipass
