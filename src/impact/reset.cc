#include "impact/reset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "pci/inventory.h"

namespace pcipass {
namespace {

struct Family {
  const char* name;
  std::vector<uint16_t> devices;  // AMD (vendor 1002) device IDs
};

// AMD GPU families that do not come back from FLR, PM or bus reset and need the vendor-reset
// module's device-specific reset: the IDs of vendor-reset's device table (src/device-db.h,
// github.com/gnif/vendor-reset), as listed there in 2026.
const std::vector<Family>& vendor_reset_families() {
  static const std::vector<Family> families = {
      {"AMD Polaris 10",
       {0x67c0, 0x67c1, 0x67c2, 0x67c4, 0x67c7, 0x67d0, 0x67df, 0x67c8, 0x67c9, 0x67ca, 0x67cc,
        0x67cf, 0x6fdf}},
      {"AMD Polaris 11", {0x67e0, 0x67e3, 0x67e8, 0x67eb, 0x67ef, 0x67ff, 0x67e1, 0x67e7, 0x67e9}},
      {"AMD Polaris 12", {0x6980, 0x6981, 0x6985, 0x6986, 0x6987, 0x6995, 0x6997, 0x699f}},
      {"AMD Vega 10",
       {0x6860, 0x6861, 0x6862, 0x6863, 0x6864, 0x6867, 0x6868, 0x6869, 0x686a, 0x686b, 0x686c,
        0x686d, 0x686e, 0x686f, 0x687f}},
      {"AMD Vega 20", {0x66a0, 0x66a1, 0x66a2, 0x66a3, 0x66a4, 0x66a7, 0x66af, 0x164c}},
      {"AMD Navi 10",
       {0x7310, 0x7312, 0x7318, 0x7319, 0x731a, 0x731b, 0x731e, 0x731f, 0x15bf, 0x15dd, 0x15de,
        0x15e7, 0x1636, 0x1638}},
      {"AMD Navi 12", {0x7360, 0x7362}},
      {"AMD Navi 14", {0x7340, 0x7341, 0x7347, 0x734f}},
      {"AMD Navi 23", {0x73ff}},
      {"AMD Arcturus (Instinct MI100)", {0x738c}},
  };
  return families;
}

const Family* known_bad(const Device& d) {
  if (d.vendor != 0x1002) return nullptr;
  for (const auto& f : vendor_reset_families())
    if (std::find(f.devices.begin(), f.devices.end(), d.device) != f.devices.end()) return &f;
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const char* s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Everything a secondary bus reset of d's bus reaches besides d: the bus's other functions and
// all below them. Empty on a root bus, where no bridge can reset it.
std::vector<PciAddress> bus_neighbours(const Inventory& inv, const Device& d) {
  std::vector<PciAddress> out;
  if (d.parents.empty()) return out;
  const PciAddress& bridge = d.parents.back();
  for (const auto& o : inv.devices())
    if (o.address != d.address &&
        std::find(o.parents.begin(), o.parents.end(), bridge) != o.parents.end())
      out.push_back(o.address);
  return out;
}

// Without the kernel's reset_method (before 5.15, or hidden because none works): what its
// probes would find, in its order (drivers/pci/pci.c, pci_reset_fn_methods). A device-specific
// quirk or an ACPI _RST cannot be seen from here.
std::vector<std::string> inferred_methods(const Device& d, const std::vector<PciAddress>& shared) {
  std::vector<std::string> m;
  if (d.details && d.details->config) {
    const ConfigSpace& c = *d.details->config;
    if (c.pcie && c.pcie->flr) m.push_back("flr");
    if (c.af_flr) m.push_back("af_flr");
    if (c.pm && !c.pm_no_soft_reset) m.push_back("pm");
  }
  // The kernel's bus method resets a bus only for a device alone on it, never for a bridge.
  if (!d.parents.empty() && !d.is_bridge() && shared.empty()) m.push_back("bus");
  return m;
}

std::string joined(const std::vector<PciAddress>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : ", ") + a.str();
  return s;
}

// The fix of a shared bus reset: `others` (what it also reaches, not yet in the VM) go along.
std::string shared_bus_fix(const std::vector<PciAddress>& others) {
  return fmt::format(
      "assign {} to the same VM as this device, or expect its state to carry over from one VM "
      "start to the next",
      joined(others));
}

void explain(ResetAssessment& r, const Device& d) {
  std::string how = fmt::format("{}", fmt::join(r.methods, ", "));
  switch (r.verdict) {
    case ResetVerdict::kVendorReset:
      r.reason = fmt::format(
          "{} GPUs do not come back from the resets vfio-pci can do ({}): the VM starts once, "
          "and the next start fails or hangs",
          r.family, how.empty() ? "none here" : how);
      r.fix = fmt::format(
          "install the vendor-reset module (github.com/gnif/vendor-reset) and, on kernel 5.15 "
          "or later, select it: echo device_specific > /sys/bus/pci/devices/{}/reset_method",
          d.address.str());
      return;
    case ResetVerdict::kFunction:
      r.reason = fmt::format("vfio-pci resets it alone ({})", how);
      return;
    case ResetVerdict::kBusAlone:
      r.reason = "only a secondary bus reset, and nothing else is on its bus: vfio-pci resets it";
      return;
    case ResetVerdict::kBusShared:
      r.reason = fmt::format(
          "no reset of its own: only a bus reset, which also resets {}; QEMU does that only "
          "when all of them are assigned to the same VM",
          joined(r.bus_reset_also));
      r.fix = shared_bus_fix(r.bus_reset_also);
      return;
    case ResetVerdict::kUnknown:
      r.reason =
          "unknown: the kernel lists no reset_method and the capabilities past the first 64 "
          "bytes of config space could not be read";
      r.fix = "run pcipass as root: config space past 64 bytes is root's to read";
      return;
    case ResetVerdict::kNone:
      r.reason =
          "no reset method: the device keeps the state the last guest left, so a second VM "
          "start may fail";
      r.fix = "shut the host down between VM starts if the second start fails";
      return;
  }
}

}  // namespace

const char* reset_verdict_id(ResetVerdict v) {
  switch (v) {
    case ResetVerdict::kFunction:
      return "function";
    case ResetVerdict::kBusAlone:
      return "bus_alone";
    case ResetVerdict::kBusShared:
      return "bus_shared";
    case ResetVerdict::kNone:
      return "none";
    case ResetVerdict::kVendorReset:
      return "vendor_reset";
    case ResetVerdict::kUnknown:
      return "unknown";
  }
  return "none";
}

ResetAssessment assess_reset(const Inventory& inv, const Device& d) {
  ResetAssessment r;
  std::vector<PciAddress> shared = bus_neighbours(inv, d);
  if (d.details && !d.details->reset_methods.empty()) {
    r.methods = d.details->reset_methods;
    r.methods_from_kernel = true;
  } else {
    r.methods = inferred_methods(d, shared);
  }
  if (d.details && d.details->config) {
    const ConfigSpace& c = *d.details->config;
    r.flr = (c.pcie && c.pcie->flr) || c.af_flr;
  }
  bool own = false;
  for (const char* m : {"device_specific", "acpi", "flr", "af_flr", "pm"})
    own = own || contains(r.methods, m);
  if (const Family* f = known_bad(d)) {
    r.verdict = ResetVerdict::kVendorReset;
    r.family = f->name;
  } else if (own) {
    r.verdict = ResetVerdict::kFunction;
  } else if (contains(r.methods, "bus") || contains(r.methods, "cxl_bus")) {
    r.verdict = ResetVerdict::kBusAlone;
  } else if (!r.methods_from_kernel &&
             (!d.details || !d.details->config || d.details->config->size < 256)) {
    r.verdict = ResetVerdict::kUnknown;  // FLR and PM live in capabilities past byte 64
  } else if (!shared.empty() && !d.is_bridge()) {
    r.verdict = ResetVerdict::kBusShared;
    r.bus_reset_also = std::move(shared);
  } else {
    r.verdict = ResetVerdict::kNone;
  }
  explain(r, d);
  return r;
}

void assigned_together(ResetAssessment& r, const std::vector<PciAddress>& together) {
  if (r.verdict != ResetVerdict::kBusShared) return;
  std::vector<PciAddress> missing;
  for (const auto& a : r.bus_reset_also)
    if (std::find(together.begin(), together.end(), a) == together.end()) missing.push_back(a);
  if (missing.empty()) {
    r.reason = fmt::format(
        "no reset of its own: only a bus reset, which also resets {}, all of them assigned "
        "with it here, so QEMU can reset them together",
        joined(r.bus_reset_also));
    r.fix.clear();
  } else {
    r.fix = shared_bus_fix(missing);
  }
}

}  // namespace pcipass
