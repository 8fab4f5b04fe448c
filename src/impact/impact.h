// What the host would lose if a PCI device left it: network interfaces (and the default
// route), disks with mounted filesystems, swap, RAID members, the framebuffer console.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/context.h"
#include "host/host_fs.h"
#include "pci/inventory.h"

namespace pcipass {

// What the host uses a device for. The ids (use_kind_id) are the `kind` of docs/json.md's
// HOST_USE: stable, new kinds add ids.
enum class UseKind {
  kNet,      // a network interface ("net")
  kRoute,    // it carries the default route ("route")
  kSsh,      // it carries this SSH session ("ssh")
  kMount,    // a mounted filesystem ("mount")
  kRootFs,   // the root filesystem ("root-fs")
  kSwap,     // active swap ("swap")
  kMd,       // a member of an active RAID array ("md")
  kConsole,  // the framebuffer console ("console")
  kProcess,  // a process holds a device file of it open ("process")
};
const char* use_kind_id(UseKind k);

struct HostUse {
  UseKind kind;
  std::string name;       // "eth0", "vda1", "/", "fb0", "1234"
  std::string detail;     // human explanation
  bool critical = false;  // losing it breaks the host (root fs, default route, console...)
  std::vector<std::string> addresses =
      {};  // "net": the interface's IPv4/IPv6 addresses ("192.0.2.4/24")
};

// A process holding a device open: /dev/vfio/N, /dev/dri/*, or a sysfs resource/config file.
struct ProcessHold {
  int pid = 0;
  std::string comm;  // /proc/PID/comm
  std::string path;  // what it holds open, e.g. /dev/vfio/3
};

// Every process with an open descriptor whose target satisfies `match`. Other users' processes
// are invisible without privileges: their number goes to `hidden` (when given), so that "no
// process uses it" is never said for "could not look". For the same reason a /proc that cannot be
// listed is an error; one that is not there (a captured tree without it) has no processes.
Result<std::vector<ProcessHold>> find_holders(const HostFs& fs,
                                              const std::function<bool(const std::string&)>& match,
                                              size_t* hidden = nullptr);

struct ImpactOptions {
  // "CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT" of the SSH session in use; nullopt: none known.
  std::optional<std::string> ssh_connection;
  bool processes = true;  // scan /proc/PID/fd for open device files
  // The process's own SSH session (SSH_CONNECTION) when its view is the live host: a captured
  // tree's NICs never carry the session of whoever reads the tree.
  static ImpactOptions for_process(const ProcessContext& process);
};

class HostImpact {
 public:
  static HostImpact scan(const HostFs& fs, const Inventory& inv);
  static HostImpact scan(const HostFs& fs, const Inventory& inv, const ImpactOptions& options);
  // Uses of one device (not of the devices below it).
  const std::vector<HostUse>& uses(const PciAddress& a) const;
  bool critical(const PciAddress& a) const;
  // "holds the root filesystem (/ on vda1)" for the first critical use; "" when none.
  std::string critical_reason(const PciAddress& a) const;

  // Adds a use by hand (tests; later: processes found by the assign code).
  void add(const PciAddress& a, HostUse use) { uses_[a].push_back(std::move(use)); }
  // Processes whose open files could not be read (permission denied): the devices they hold are
  // missing from uses(). 0 for root.
  size_t hidden_processes() const { return hidden_processes_; }
  void set_hidden_processes(size_t n) { hidden_processes_ = n; }
  // Files and directories of the scan that exist but could not be read ("open /proc/self/
  // mountinfo: Permission denied"): the uses they would show are unknown. Empty as root.
  const std::vector<std::string>& problems() const { return problems_; }
  void add_problem(std::string p) { problems_.push_back(std::move(p)); }

 private:
  std::map<PciAddress, std::vector<HostUse>> uses_;
  size_t hidden_processes_ = 0;
  std::vector<std::string> problems_;
};

// The PCI device that owns a sysfs path: the deepest PCI address among its components.
std::optional<PciAddress> owning_pci_device(const std::string& sysfs_path);

}  // namespace pcipass
