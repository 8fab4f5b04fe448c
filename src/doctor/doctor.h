// pcipass doctor: why a VM did not start. The text of a failure (a message, QEMU's or libvirt's
// log) is matched against a catalog of known messages (catalog.cc: pattern -> cause -> evidence
// check -> fix, as pciutils keeps its access methods in a table); each match is then checked on
// this host, through HostFs, and explained with the evidence found: the log line, sysfs values,
// /proc/iomem ranges, kernel log lines. Logs are hostile input: only a bounded tail is read, and
// no byte of it can crash or stall the matching (docs/vm.md, "doctor").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/host_fs.h"
#include "pci/address.h"
#include "util/result.h"

namespace pcipass::doctor {

enum class Cause {
  kIommuOff,            // no IOMMU: libvirt's "host doesn't support passthrough", no iommu_group
  kMonitorReset,        // "Unable to read from monitor": QEMU died, its own message says why
  kVfioUnsupported,     // libvirt's "VFIO device assignment is currently not supported"
  kGroupNotViable,      // another member of the IOMMU group is still on a host driver
  kInterruptRemapping,  // the container refused: no interrupt remapping
  kMemlock,             // pinning guest memory hit RLIMIT_MEMLOCK
  kBootFramebuffer,     // a boot framebuffer (efifb, simpledrm, ...) holds the GPU's BAR
  kPowerState,          // the device stays in D3cold
  kRmrr,                // the firmware's RMRR keeps the device from any VM
  kUnmanagedDevice,     // managed='no' and the device is not on vfio-pci
  kRomFile,             // the romfile given to QEMU is not there
  kUnknown,             // no known message: the lines looked at are shown
};

// "iommu_off", "monitor_reset", "vfio_unsupported", "group_not_viable", "interrupt_remapping",
// "memlock", "boot_framebuffer", "power_state", "rmrr", "unmanaged_device", "romfile",
// "unknown": JSON ids, stable (docs/json.md).
const char* cause_id(Cause c);

// One thing found on this host or in a log: where (a path, "FILE:LINE", the kernel log's
// source) and what it says.
struct Evidence {
  std::string source;
  std::string detail;
};

struct Finding {
  Cause cause = Cause::kUnknown;
  std::string line;                  // the message matched, cut to a screen's worth
  std::string where;                 // "FILE:LINE", or "command line"
  std::optional<PciAddress> device;  // named in the line (host=..., "vfio 0000:01:00.0:")
  // Whether this host shows the cause now (false: the log is from another boot or host, or the
  // evidence could not be read).
  bool confirmed = false;
  std::string explanation;  // the cause on this host, one or two sentences
  std::vector<Evidence> evidence;
  std::string fix;
};

// Where the kernel's messages came from: "/dev/kmsg", "/var/log/kern.log" or "" (none readable).
struct KernelLog {
  std::string source;
  std::vector<std::string> lines;
};

struct Report {
  std::string source;             // the log's path, or "command line"
  size_t first_line = 1;          // line number of the section's first line in what was read
  bool truncated = false;         // only the log's tail was read: line numbers count from its start
  std::string kernel_log;         // KernelLog::source
  std::vector<Finding> findings;  // empty: nothing known matched
  std::vector<std::string> looked_at;  // the section's last lines, when nothing matched
  std::string fix;                     // when nothing matched: kUnknownFix or kBeforeQemuFix
  bool explained() const { return !findings.empty(); }
};

enum class Mode { kMessage, kLog, kDomain, kNewest };
struct Request {
  Mode mode = Mode::kNewest;
  std::string message;  // kMessage
  std::string log;      // kLog: a path on the host (under --root)
  std::string domain;   // kDomain: /var/log/libvirt/qemu/DOMAIN.log
};

// How much of a log (and of the kernel log) is read: its last 1 MiB.
inline constexpr size_t kTailBytes = size_t{1} << 20;
inline constexpr const char* kLibvirtLogDir = "/var/log/libvirt/qemu";

// The answer when nothing known matched, beside the lines looked at.
inline constexpr const char* kUnknownFix =
    "pcipass knows no cause for these lines: `pcipass check` shows what the host lacks; with "
    "libvirt, its full log is /var/log/libvirt/qemu/DOMAIN.log";

// libvirt refused the start before it ran QEMU (seen in tests/vm: an unmanaged device on its
// host driver, a host without an IOMMU): the domain's log then holds only "shutting down,
// reason=failed", and libvirt's error went to the caller and libvirtd's own log.
inline constexpr const char* kBeforeQemuFix =
    "libvirt stopped this start before it ran QEMU, so the domain's log holds no reason: give "
    "pcipass doctor the error virsh or virt-manager printed (pcipass doctor 'MESSAGE', or --log "
    "FILE), or libvirtd's own log (journalctl -u libvirtd)";

// Reads what the request names and the kernel log, then diagnose_text().
Result<Report> diagnose(const HostFs& fs, const Request& r);

// The text of one failure: every line matched against the catalog, each cause once per device.
struct Text {
  std::string_view text;
  std::string source;
  bool truncated = false;
};
Report diagnose_text(const HostFs& fs, const Text& text, const KernelLog& kernel);

// The part of a libvirt log that belongs to the last start: from the last line that says
// "starting up" on; all of it when none does (QEMU's own stderr). `first_line` is set to the
// section's first line number.
std::string_view last_start(std::string_view log, size_t& first_line);
// Lines of a text without their "\n" or "\r\n".
std::vector<std::string> split_lines(std::string_view text);
// /dev/kmsg records ("6,1024,5301,-;text", continuation lines " KEY=value") as text lines.
std::vector<std::string> kmsg_lines(std::string_view records);
// The kernel log: /dev/kmsg, else /var/log/kern.log's tail, else none.
KernelLog read_kernel_log(const HostFs& fs);
// The first PCI address in a line ("0000:01:00.0" or "01:00.0" standing alone).
std::optional<PciAddress> address_in(std::string_view line);
// Case-insensitive match of a pattern whose '*' stands for any text, anywhere in the line.
bool matches(std::string_view line, std::string_view pattern);

}  // namespace pcipass::doctor
