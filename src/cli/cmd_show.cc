// pcipass show DEVICE: everything known about one device.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace pcipass::cli {
namespace {

struct Caveat {
  std::string id, text;
};

// The seeds' assignment caveats, checked against this host.
std::vector<Caveat> caveats(Context& ctx, Inventory& inv, const Device& d) {
  std::vector<Caveat> out;
  const auto& cfg = d.details->config;
  bool conventional = cfg && !cfg->pcie && cfg->size > 64;
  for (auto it = d.parents.rbegin(); conventional && it != d.parents.rend(); ++it) {
    Device* p = inv.find(*it);
    if (!p) continue;
    if (!p->details) inv.load_details(ctx.fs(), *p, nullptr);
    const auto& pc = p->details->config;
    if (pc && pc->pcie && pc->pcie->port_type == 7) {
      out.push_back(
          {"conventional-pci-behind-bridge",
           fmt::format("conventional PCI device behind the PCIe-to-PCI bridge {}: every device "
                       "behind that bridge can only be assigned together, to one VM",
                       p->address.str())});
      break;
    }
  }
  if (cfg && cfg->interrupt_pin && !cfg->msi && !cfg->msix && d.details->irq &&
      *d.details->irq > 0) {
    std::vector<std::string> sharing;
    for (auto& other : inv.devices()) {
      if (&other == &d) continue;
      if (auto irq = ctx.fs().read_number(std::string(kPciDevicesDir) + "/" + other.address.str() +
                                          "/irq");
          irq && *irq == *d.details->irq)
        sharing.push_back(other.address.str());
    }
    if (!sharing.empty())
      out.push_back(
          {"shared-intx",
           fmt::format("no MSI or MSI-X and INTx IRQ {} is shared with {}: the device cannot "
                       "be assigned while another device uses that line",
                       *d.details->irq, fmt::join(sharing, ", "))});
  }
  return out;
}

std::string yes_no(bool b) {
  return b ? "yes" : "no";
}

std::string libvirt_address(const PciAddress& a) {
  return fmt::format(
      "<address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>", a.domain,
      a.bus, a.slot, a.function);
}

Json capabilities_json(const ConfigSpace& c) {
  Json caps = Json::array();
  for (const auto& cap : c.capabilities)
    caps.push_back(
        {{"id", cap.extended ? fmt::format("{:04x}", cap.id) : fmt::format("{:02x}", cap.id)},
         {"extended", cap.extended},
         {"offset", fmt::format("{:03x}", cap.offset)},
         {"name", cap.name},
         {"summary", cap.summary}});
  return caps;
}

Json config_json(const ConfigSpace& c) {
  return {{"size", c.size},
          {"msi", c.msi},
          {"msix", c.msix},
          {"flr", c.pcie && c.pcie->flr},
          {"pcie_port_type", c.pcie ? Json(c.pcie->port_type_name) : Json(nullptr)},
          {"acs", c.acs.has_value()},
          {"aer", c.aer},
          {"sriov_total_vfs", c.sriov ? Json(c.sriov->total_vfs) : Json(nullptr)},
          {"interrupt_pin", c.interrupt_pin},
          {"problems", c.problems}};
}

Json libvirt_json(const PciAddress& a) {
  return {{"nodedev", a.libvirt_name()},
          {"domain", fmt::format("0x{:04x}", a.domain)},
          {"bus", fmt::format("0x{:02x}", a.bus)},
          {"slot", fmt::format("0x{:02x}", a.slot)},
          {"function", fmt::format("0x{:x}", a.function)},
          {"address_xml", libvirt_address(a)}};
}

Json show_json(Context& ctx, Inventory& inv, Device& d, const Assessment& as,
               const std::vector<Caveat>& cv) {
  const auto& x = *d.details;
  Json j = device_json(d);
  j["subsystem_name"] = d.subsystem_name;
  j["driver_override"] = or_null(x.driver_override);
  j["modalias"] = x.modalias;
  j["modules"] = x.modules;
  j["numa_node"] = or_null(x.numa_node);
  j["irq"] = or_null(x.irq);
  j["reset_methods"] = x.reset_methods;
  // Bridges stay with the host: no verdict on resetting them for a guest.
  j["reset"] =
      d.is_bridge() || d.is_host_bridge() ? Json(nullptr) : reset_json(assess_reset(inv, d));
  j["link"] = {{"speed", or_null(x.link_speed)},
               {"width", or_null(x.link_width)},
               {"max_speed", or_null(x.max_link_speed)},
               {"max_width", or_null(x.max_link_width)}};
  Json members = Json::array();
  if (d.iommu_group)
    if (const IommuGroup* g = ctx.groups().find(*d.iommu_group))
      for (const Device* m : g->devices) members.push_back(m->address.str());
  j["iommu_group_members"] = members;
  j["capabilities"] = x.config ? capabilities_json(*x.config) : Json::array();
  j["config_space"] = x.config ? config_json(*x.config) : Json(nullptr);
  j["config_error"] = or_null(x.config_error);
  j["sriov"] = x.sriov_totalvfs
                   ? Json{{"total_vfs", *x.sriov_totalvfs}, {"num_vfs", x.sriov_numvfs.value_or(0)}}
                   : Json(nullptr);
  j["libvirt"] = libvirt_json(d.address);
  j["decimal"] = {{"domain", d.address.domain},
                  {"bus", d.address.bus},
                  {"slot", d.address.slot},
                  {"function", d.address.function}};
  Json uses = Json::array();
  for (const auto& u : ctx.impact().uses(d.address)) uses.push_back(host_use_json(u));
  j["host_uses"] = uses;
  j["passthrough"] = assessment_json(as);
  Json cj = Json::array();
  for (const auto& c : cv) cj.push_back({{"id", c.id}, {"text", c.text}});
  j["caveats"] = cj;
  return j;
}

// One "  key            value" line of `show`; an empty value prints nothing.
struct Rows {
  std::ostream& o;
  void operator()(const std::string& key, const std::string& value) const {
    if (!value.empty()) o << "  " << fmt::format("{:<15}", key) << printable(value) << '\n';
  }
};

void reset_rows(const Rows& row, const Inventory& inv, const Device& d) {
  ResetAssessment reset = assess_reset(inv, d);
  row("reset", fmt::format("{}: {}", reset_verdict_id(reset.verdict), reset.reason));
  if (!reset.methods_from_kernel)
    row("", reset.methods.empty() ? "(the kernel lists no reset_method here)"
                                  : "(methods from config space: the kernel lists none)");
  if (!reset.fix.empty()) row("", "fix: " + reset.fix);
}

void config_rows(const Rows& row, const ConfigSpace& c, const std::optional<int>& irq_line) {
  std::string irq = c.msix ? "MSI-X" : c.msi ? "MSI" : c.interrupt_pin ? "INTx only" : "none";
  if (c.msix && c.msi) irq = "MSI, MSI-X";
  if (irq_line && *irq_line > 0) irq += fmt::format(" (IRQ {})", *irq_line);
  row("interrupts", irq);
  bool first = true;
  for (const auto& cap : c.capabilities) {
    row(first ? "capabilities" : "", fmt::format("[{:03x}] {}{}", cap.offset, cap.name,
                                                 cap.summary.empty() ? "" : ": " + cap.summary));
    first = false;
  }
  for (const auto& p : c.problems) row("config space", p);
}

void show_human(Context& ctx, Inventory& inv, Device& d, const Assessment& as,
                const std::vector<Caveat>& cv) {
  const auto& x = *d.details;
  auto& o = ctx.out;
  const Rows row{o};
  o << ctx.term.paint(Style::kBold, d.address.str()) << "  " << printable(device_title(d)) << '\n';
  row("class", fmt::format("{} [{:06x}] ({})", d.class_name.empty() ? "?" : d.class_name,
                           d.class_code, d.kind()));
  if (d.subsystem_vendor)
    row("subsystem",
        fmt::format("{} [{:04x}:{:04x}]", d.subsystem_name.empty() ? "?" : d.subsystem_name,
                    d.subsystem_vendor, d.subsystem_device));
  row("revision", fmt::format("{:02x}", d.revision));
  row("driver", d.driver.value_or("none") +
                    (x.driver_override ? " (driver_override: " + *x.driver_override + ")" : ""));
  row("modules", !x.modules.empty()   ? fmt::format("{}", fmt::join(x.modules, ", "))
                 : x.modalias.empty() ? "unknown (no modalias)"
                                      : "none match its modalias");
  if (d.iommu_group) {
    std::vector<std::string> members;
    if (const IommuGroup* g = ctx.groups().find(*d.iommu_group))
      for (const Device* m : g->devices) members.push_back(m->address.str());
    row("iommu group", fmt::format("{} ({})", *d.iommu_group, fmt::join(members, ", ")));
  } else {
    row("iommu group", "none");
  }
  row("passthrough", fmt::format("{}: {}", verdict_label(as.verdict), as.reason));
  row("numa node", x.numa_node ? std::to_string(*x.numa_node) : "-");
  std::vector<std::string> chain;
  for (const auto& p : d.parents) {
    const Device* pd = inv.find(p);
    chain.push_back(pd ? fmt::format("{} ({})", p.str(), pd->driver.value_or("no driver"))
                       : p.str());
  }
  row("parents", chain.empty() ? "root bus" : fmt::format("{}", fmt::join(chain, " > ")));
  if (x.link_speed)
    row("link", fmt::format("{} x{} (max {} x{})", *x.link_speed, x.link_width.value_or("?"),
                            x.max_link_speed.value_or("?"), x.max_link_width.value_or("?")));
  if ((d.class_code >> 16) == 0x03) row("boot vga", yes_no(d.boot_vga));
  if (!d.is_bridge() && !d.is_host_bridge()) reset_rows(row, inv, d);
  if (x.config)
    config_rows(row, *x.config, x.irq);
  else
    row("config space", x.config_error);
  if (x.sriov_totalvfs)
    row("sr-iov",
        fmt::format("{} of {} VFs enabled", x.sriov_numvfs.value_or(0), *x.sriov_totalvfs));
  if (d.physfn) row("sr-iov", "virtual function of " + d.physfn->str());
  for (const auto& u : ctx.impact().uses(d.address))
    row("host uses", u.detail + (u.critical ? " [critical]" : ""));
  row("libvirt", d.address.libvirt_name());
  row("", libvirt_address(d.address));
  row("decimal", fmt::format("domain {} bus {} slot {} function {}", d.address.domain,
                             d.address.bus, d.address.slot, d.address.function));
  for (const auto& c : cv) row("caveat", c.text);
}

}  // namespace

int run_show(Context& ctx, const Args& a) {
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  // Each device once, in the order first named: `show 01:00.0 0000:01:00.0 10de:1b80` is one.
  auto chosen = resolve_devices(**inv, a);
  if (!chosen) return fail(ctx, chosen.error());
  Json all = Json::array();
  bool iommu = (*inv)->iommu_groups_present();
  ctx.impact();  // its warnings before the first device's
  for (size_t i = 0; i < chosen->size(); ++i) {
    Device& d = *(*inv)->find((*chosen)[i]);
    (*inv)->load_details(ctx.fs(), d, &ctx.modules());
    for (const auto& problem : d.details->problems) print_warning(ctx.err, ctx.term, problem);
    Assessment as = assess(d, ctx.groups(), ctx.impact(), iommu);
    auto cv = caveats(ctx, **inv, d);
    if (ctx.json) {
      all.push_back(show_json(ctx, **inv, d, as, cv));
    } else {
      if (i) ctx.out << '\n';
      show_human(ctx, **inv, d, as, cv);
    }
  }
  if (ctx.json)
    ctx.out << dump_json(Json{{"schema", "pcipass.show/1"},
                              {"devices", all},
                              {"pci_ids", pci_ids_names_json(ctx)}})
            << '\n';
  return kExitOk;
}

}  // namespace pcipass::cli
