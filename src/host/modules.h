// Kernel modules of the host: which are built in, loadable or loaded, and which could drive a
// device (modalias lookup). libkmod reads the index files of ROOT/lib/modules/RELEASE and the
// *.conf files of the tree's modprobe.d directories (aliases there count), never the running
// machine's; /proc/modules is read through HostFs so captured trees work.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/host_fs.h"
#include "util/result.h"

struct kmod_ctx;

namespace pcipass {

enum class ModuleState { kMissing, kAvailable, kLoaded, kBuiltin };

// The directories libkmod reads modprobe configuration from, first wins for a file name: kmod
// 30's defaults (/etc, /run, /usr/local/lib, /lib) with /usr/lib, which later kmod reads before
// /lib, for trees of newer distributions.
inline constexpr const char* kModprobeDirs[] = {"/etc/modprobe.d", "/run/modprobe.d",
                                                "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d",
                                                "/lib/modprobe.d"};
const char* module_state_name(ModuleState s);

// The tree's modprobe configuration as modprobe applies it: the *.conf and *.alias files of
// kModprobeDirs (a name once, its first directory winning) sorted by name, as tree paths.
// `problems` names each directory that exists but cannot be listed: then the configuration is
// not known, which is not the same as empty.
struct ModprobeConfig {
  std::vector<std::string> files;
  std::vector<std::string> problems;
};
ModprobeConfig modprobe_config(const HostFs& fs);

// modprobe_config's files as paths on this machine resolved inside the tree: what ModuleIndex
// gives libkmod.
std::vector<std::string> modprobe_files(const HostFs& fs);

class ModuleIndex {
 public:
  static std::unique_ptr<ModuleIndex> open(const HostFs& fs);
  ~ModuleIndex();
  ModuleIndex(const ModuleIndex&) = delete;
  ModuleIndex& operator=(const ModuleIndex&) = delete;

  const std::string& release() const { return release_; }
  // False when ROOT/lib/modules/RELEASE is missing: states then come from /proc/modules only.
  bool has_index() const { return ctx() != nullptr; }
  // Why the index could not be opened although the tree has one: libkmod did not load (the
  // error names the library and the package). nullopt otherwise, also while libkmod was not
  // needed (it is loaded on the first question: see ctx()).
  const std::optional<Error>& library_error() const { return library_error_; }
  // Whether libkmod was needed (and so loaded, or found missing) so far.
  bool library_tried() const { return ctx_tried_; }
  // Why a module's absence cannot be trusted: /proc/sys/kernel/osrelease, RELEASE/modules.builtin
  // or RELEASE/modules.dep.bin exists but cannot be read (permissions). Then the modules are
  // unknown, not missing. nullopt when they are absent or were read.
  const std::optional<Error>& index_error() const { return index_error_; }
  ModuleState state(const std::string& name) const;
  // Module names (underscored) whose aliases match a device's modalias.
  std::vector<std::string> modules_for_alias(const std::string& modalias) const;

  static std::string normalize(std::string name);  // "vfio-pci" -> "vfio_pci"

  // What libkmod was given, as paths on this machine (all inside the tree): the module
  // directory, and every modprobe.d file in libkmod's order of precedence.
  const std::string& module_dir() const { return module_dir_; }
  const std::vector<std::string>& config_files() const { return config_files_; }

 private:
  ModuleIndex() = default;
  ::kmod_ctx* ctx() const;  // opened on first use
  mutable ::kmod_ctx* ctx_ = nullptr;
  mutable bool ctx_tried_ = false;
  std::string release_;
  std::set<std::string> loaded_, builtin_;
  std::string module_dir_;
  std::vector<std::string> config_files_;
  mutable std::optional<Error> library_error_;
  std::optional<Error> index_error_;
};

}  // namespace pcipass
