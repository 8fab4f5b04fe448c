// Kernel modules of the host: which are built in, loadable or loaded, and which could drive a
// device (modalias lookup). Index files are read through libkmod from
// ROOT/lib/modules/RELEASE; /proc/modules is read through HostFs so captured trees work.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "host/host_fs.h"

struct kmod_ctx;

namespace pcipass {

enum class ModuleState { kMissing, kAvailable, kLoaded, kBuiltin };
const char* module_state_name(ModuleState s);

class ModuleIndex {
 public:
  static std::unique_ptr<ModuleIndex> open(const HostFs& fs);
  ~ModuleIndex();
  ModuleIndex(const ModuleIndex&) = delete;
  ModuleIndex& operator=(const ModuleIndex&) = delete;

  const std::string& release() const { return release_; }
  // False when ROOT/lib/modules/RELEASE is missing: states then come from /proc/modules only.
  bool has_index() const { return ctx_ != nullptr; }
  ModuleState state(const std::string& name) const;
  // Module names (underscored) whose aliases match a device's modalias.
  std::vector<std::string> modules_for_alias(const std::string& modalias) const;

  static std::string normalize(std::string name);  // "vfio-pci" -> "vfio_pci"

 private:
  ModuleIndex() = default;
  ::kmod_ctx* ctx_ = nullptr;
  std::string release_;
  std::set<std::string> loaded_, builtin_;
};

}  // namespace pcipass
