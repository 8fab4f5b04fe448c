#include "pci/config_space.h"

#include <fmt/format.h>

#include <set>

namespace pcipass {
namespace {

struct Reader {
  std::string_view b;
  bool has(size_t off, size_t n) const { return off + n <= b.size(); }
  uint8_t u8(size_t off) const { return static_cast<uint8_t>(b[off]); }
  uint16_t u16(size_t off) const { return static_cast<uint16_t>(u8(off) | (u8(off + 1) << 8)); }
  uint32_t u32(size_t off) const { return u16(off) | (static_cast<uint32_t>(u16(off + 2)) << 16); }
};

constexpr uint16_t kCapPm = 0x01, kCapMsi = 0x05, kCapPcie = 0x10, kCapMsix = 0x11, kCapAf = 0x13;
constexpr uint16_t kExtAer = 0x0001, kExtAcs = 0x000d, kExtSriov = 0x0010;

const char* speed_name(int code) {
  static const char* names[] = {"?", "2.5", "5", "8", "16", "32", "64"};
  return code >= 1 && code <= 6 ? names[code] : "?";
}
int speed_x10(int code) {
  static const int v[] = {0, 25, 50, 80, 160, 320, 640};
  return code >= 1 && code <= 6 ? v[code] : 0;
}

std::string port_type_name(int t) {
  switch (t) {
    case 0:
      return "Endpoint";
    case 1:
      return "Legacy Endpoint";
    case 4:
      return "Root Port";
    case 5:
      return "Upstream Port";
    case 6:
      return "Downstream Port";
    case 7:
      return "PCIe-to-PCI Bridge";
    case 8:
      return "PCI-to-PCIe Bridge";
    case 9:
      return "Root Complex Integrated Endpoint";
    case 10:
      return "Root Complex Event Collector";
    default:
      return fmt::format("type {}", t);
  }
}

// A capability whose registers run past the bytes read: named, so that a missing SR-IOV or MSI
// line is not taken for a device without it.
void truncated(const Capability& c, ConfigSpace& cs) {
  cs.problems.push_back(
      fmt::format("{} capability at 0x{:0{}x} is truncated", c.name, c.offset, c.extended ? 3 : 2));
}

void decode_standard(const Reader& r, Capability& c, ConfigSpace& cs) {
  size_t o = c.offset;
  switch (c.id) {
    case kCapPm:
      if (r.has(o + 4, 2)) {
        cs.pm = true;
        cs.pm_no_soft_reset = r.u16(o + 4) & 0x8;
        c.summary = cs.pm_no_soft_reset ? "NoSoftRst+" : "NoSoftRst-";
      } else {
        truncated(c, cs);
      }
      break;
    case kCapAf:
      // The kernel's pci_af_flr() needs both Transactions Pending and FLR in AF Capabilities.
      if (r.has(o + 3, 1)) {
        cs.af_flr = (r.u8(o + 3) & 0x3) == 0x3;
        c.summary = cs.af_flr ? "FLR" : "no FLR";
      } else {
        truncated(c, cs);
      }
      break;
    case kCapMsi:
      if (r.has(o + 2, 2)) {
        uint16_t ctl = r.u16(o + 2);
        cs.msi = true;
        int vectors = 1 << ((ctl >> 1) & 7);
        c.summary = fmt::format("{}-bit, {} vector{}{}", (ctl & 0x80) ? 64 : 32, vectors,
                                vectors == 1 ? "" : "s", (ctl & 1) ? ", enabled" : "");
      } else {
        truncated(c, cs);
      }
      break;
    case kCapMsix:
      if (r.has(o + 2, 2)) {
        uint16_t ctl = r.u16(o + 2);
        cs.msix = true;
        c.summary =
            fmt::format("{} vectors{}", (ctl & 0x7ff) + 1, (ctl & 0x8000) ? ", enabled" : "");
      } else {
        truncated(c, cs);
      }
      break;
    case kCapPcie:
      if (r.has(o, 8)) {
        PcieInfo p;
        p.port_type = (r.u16(o + 2) >> 4) & 0xf;
        p.port_type_name = port_type_name(p.port_type);
        p.flr = r.u32(o + 4) & (1u << 28);
        if (r.has(o + 0x14, 0)) {
          uint32_t lcap = r.u32(o + 0xc);
          uint16_t lsta = r.u16(o + 0x12);
          if ((lcap & 0xf) != 0) {
            p.link_max_speed_gts_x10 = speed_x10(lcap & 0xf);
            p.link_max_width = (lcap >> 4) & 0x3f;
            p.link_speed_gts_x10 = speed_x10(lsta & 0xf);
            p.link_width = (lsta >> 4) & 0x3f;
          }
        }
        c.summary = p.port_type_name + (p.flr ? ", FLR" : "");
        if (p.link_max_width)
          c.summary +=
              fmt::format(", link {} GT/s x{} (max {} GT/s x{})", speed_name(r.u16(o + 0x12) & 0xf),
                          *p.link_width, speed_name(r.u32(o + 0xc) & 0xf), *p.link_max_width);
        cs.pcie = p;
      } else {
        truncated(c, cs);
      }
      break;
  }
}

void decode_extended(const Reader& r, Capability& c, ConfigSpace& cs) {
  size_t o = c.offset;
  switch (c.id) {
    case kExtAer:
      cs.aer = true;
      break;
    case kExtAcs:
      if (r.has(o + 4, 4)) {
        AcsInfo a{r.u16(o + 4), r.u16(o + 6)};
        c.summary = fmt::format("cap 0x{:04x} ctl 0x{:04x}", a.capability, a.control);
        cs.acs = a;
      } else {
        truncated(c, cs);
      }
      break;
    case kExtSriov:
      if (r.has(o + 0x1a, 2)) {
        SriovInfo s;
        s.initial_vfs = r.u16(o + 0x0c);
        s.total_vfs = r.u16(o + 0x0e);
        s.num_vfs = r.u16(o + 0x10);
        s.vf_offset = r.u16(o + 0x14);
        s.vf_stride = r.u16(o + 0x16);
        s.vf_device = r.u16(o + 0x1a);
        c.summary = fmt::format("{} of {} VFs enabled, VF device {:04x}", s.num_vfs, s.total_vfs,
                                s.vf_device);
        cs.sriov = s;
      } else {
        truncated(c, cs);
      }
      break;
  }
}

void walk_standard(const Reader& r, ConfigSpace& cs) {
  if (!(cs.status & 0x10)) return;  // no capability list
  std::set<size_t> seen;
  size_t limit = std::min<size_t>(r.b.size(), 256);
  size_t ptr = r.u8(0x34) & 0xfc;
  while (ptr != 0) {
    if (ptr >= 0x40 && limit < 0x42) {  // not even one capability fits: "0x40..0x40" says nothing
      cs.problems.push_back(
          fmt::format("config space is truncated: {} bytes, too few for the capability at 0x{:02x}",
                      limit, ptr));
      return;
    }
    if (ptr < 0x40 || ptr + 2 > limit) {
      cs.problems.push_back(
          fmt::format("capability pointer 0x{:02x} is outside 0x40..0x{:02x}", ptr, limit - 1));
      return;
    }
    if (!seen.insert(ptr).second) {
      cs.problems.push_back(fmt::format("capability list loops back to 0x{:02x}", ptr));
      return;
    }
    Capability c{
        false, r.u8(ptr), static_cast<uint16_t>(ptr), capability_name(false, r.u8(ptr)), {}};
    decode_standard(r, c, cs);
    cs.capabilities.push_back(std::move(c));
    ptr = r.u8(ptr + 1) & 0xfc;
  }
}

void walk_extended(const Reader& r, ConfigSpace& cs) {
  if (r.b.size() > 0x100 && r.b.size() < 0x104 && cs.pcie)
    cs.problems.push_back(fmt::format(
        "config space is truncated: {} bytes, too few for the extended capability at 0x100",
        r.b.size()));
  if (r.b.size() < 0x104 || !cs.pcie) return;
  std::set<size_t> seen;
  size_t ptr = 0x100;
  while (ptr != 0) {
    if (ptr < 0x100 || ptr + 4 > r.b.size()) {
      cs.problems.push_back(fmt::format(
          "extended capability pointer 0x{:03x} is outside 0x100..0x{:03x}", ptr, r.b.size() - 1));
      return;
    }
    if (!seen.insert(ptr).second) {
      cs.problems.push_back(fmt::format("extended capability list loops back to 0x{:03x}", ptr));
      return;
    }
    uint32_t h = r.u32(ptr);
    if (h == 0 || h == 0xffffffff) return;  // empty list
    uint16_t id = h & 0xffff;
    Capability c{true, id, static_cast<uint16_t>(ptr), capability_name(true, id), {}};
    decode_extended(r, c, cs);
    cs.capabilities.push_back(std::move(c));
    ptr = (h >> 20) & 0xffc;
  }
}

}  // namespace

std::string capability_name(bool extended, uint16_t id) {
  if (!extended) {
    switch (id) {
      case 0x01:
        return "Power Management";
      case 0x03:
        return "VPD";
      case 0x05:
        return "MSI";
      case 0x09:
        return "Vendor Specific";
      case 0x0d:
        return "PCI Bridge Subsystem ID";
      case 0x10:
        return "PCI Express";
      case 0x11:
        return "MSI-X";
      case 0x12:
        return "SATA";
      case 0x13:
        return "Advanced Features";
      case 0x14:
        return "Enhanced Allocation";
    }
    return fmt::format("Capability 0x{:02x}", id);
  }
  switch (id) {
    case 0x0001:
      return "Advanced Error Reporting";
    case 0x0000:
      // The spec's Null Capability: hypervisors (Firecracker, tests/fixtures/hosts/
      // firecracker-h100) overwrite the IDs of capabilities they hide from a guest with it.
      return "Null (hidden by the hypervisor or firmware)";
    case 0x0002:
      return "Virtual Channel";
    case 0x0003:
      return "Device Serial Number";
    case 0x0004:
      return "Power Budgeting";
    case 0x000b:
      return "Vendor Specific";
    case 0x000d:
      return "Access Control Services";
    case 0x000e:
      return "Alternative Routing-ID";
    case 0x000f:
      return "Address Translation Services";
    case 0x0010:
      return "SR-IOV";
    case 0x0013:
      return "Page Request";
    case 0x0015:
      return "Resizable BAR";
    case 0x0017:
      return "TPH Requester";
    case 0x0018:
      return "Latency Tolerance Reporting";
    case 0x0019:
      return "Secondary PCI Express";
    case 0x001b:
      return "PASID";
    case 0x001e:
      return "L1 PM Substates";
    case 0x0025:
      return "Data Link Feature";
    case 0x0026:
      return "Physical Layer 16 GT/s";
  }
  return fmt::format("Extended Capability 0x{:04x}", id);
}

const Capability* ConfigSpace::find(bool extended, uint16_t id) const {
  for (const auto& c : capabilities)
    if (c.extended == extended && c.id == id) return &c;
  return nullptr;
}

Result<ConfigSpace> parse_config_space(std::string_view bytes) {
  if (bytes.size() < 64)
    return Error::invalid(
        fmt::format("config space is truncated: {} bytes, the header needs 64", bytes.size()));
  Reader r{bytes};
  ConfigSpace cs;
  cs.size = bytes.size();
  cs.vendor = r.u16(0);
  cs.device = r.u16(2);
  cs.command = r.u16(4);
  cs.status = r.u16(6);
  cs.revision = r.u8(8);
  cs.class_code = r.u32(8) >> 8;
  cs.header_type = r.u8(0x0e);
  cs.interrupt_line = r.u8(0x3c);
  cs.interrupt_pin = r.u8(0x3d);
  if (bytes.size() == 64) {
    if (cs.status & 0x10)
      cs.problems.push_back(
          "only the 64-byte header is readable (run as root to see capabilities)");
    return cs;
  }
  walk_standard(r, cs);
  walk_extended(r, cs);
  return cs;
}

}  // namespace pcipass
