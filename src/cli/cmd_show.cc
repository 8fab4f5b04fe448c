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

Json show_json(Context& ctx, Inventory& inv, Device& d, const Assessment& as,
               const std::vector<Caveat>& cv) {
  const auto& x = *d.details;
  Json j = device_json(d);
  j["subsystem_name"] = d.subsystem_name;
  j["driver_override"] = x.driver_override ? Json(*x.driver_override) : Json(nullptr);
  j["modalias"] = x.modalias;
  j["modules"] = x.modules;
  j["numa_node"] = x.numa_node ? Json(*x.numa_node) : Json(nullptr);
  j["irq"] = x.irq ? Json(*x.irq) : Json(nullptr);
  j["reset_methods"] = x.reset_methods;
  // Bridges stay with the host: no verdict on resetting them for a guest.
  j["reset"] =
      d.is_bridge() || d.is_host_bridge() ? Json(nullptr) : reset_json(assess_reset(inv, d));
  j["link"] = {{"speed", x.link_speed ? Json(*x.link_speed) : Json(nullptr)},
               {"width", x.link_width ? Json(*x.link_width) : Json(nullptr)},
               {"max_speed", x.max_link_speed ? Json(*x.max_link_speed) : Json(nullptr)},
               {"max_width", x.max_link_width ? Json(*x.max_link_width) : Json(nullptr)}};
  Json members = Json::array();
  if (d.iommu_group)
    if (const IommuGroup* g = ctx.groups().find(*d.iommu_group))
      for (const Device* m : g->devices) members.push_back(m->address.str());
  j["iommu_group_members"] = members;
  Json caps = Json::array();
  Json cfg = nullptr;
  if (x.config) {
    for (const auto& c : x.config->capabilities)
      caps.push_back(
          {{"id", c.extended ? fmt::format("{:04x}", c.id) : fmt::format("{:02x}", c.id)},
           {"extended", c.extended},
           {"offset", fmt::format("{:03x}", c.offset)},
           {"name", c.name},
           {"summary", c.summary}});
    cfg = {
        {"size", x.config->size},
        {"msi", x.config->msi},
        {"msix", x.config->msix},
        {"flr", x.config->pcie && x.config->pcie->flr},
        {"pcie_port_type", x.config->pcie ? Json(x.config->pcie->port_type_name) : Json(nullptr)},
        {"acs", x.config->acs.has_value()},
        {"aer", x.config->aer},
        {"sriov_total_vfs", x.config->sriov ? Json(x.config->sriov->total_vfs) : Json(nullptr)},
        {"interrupt_pin", x.config->interrupt_pin},
        {"problems", x.config->problems}};
  }
  j["capabilities"] = caps;
  j["config_space"] = cfg;
  j["config_error"] = x.config_error.empty() ? Json(nullptr) : Json(x.config_error);
  j["sriov"] = x.sriov_totalvfs
                   ? Json{{"total_vfs", *x.sriov_totalvfs}, {"num_vfs", x.sriov_numvfs.value_or(0)}}
                   : Json(nullptr);
  j["libvirt"] = {{"nodedev", d.address.libvirt_name()},
                  {"domain", fmt::format("0x{:04x}", d.address.domain)},
                  {"bus", fmt::format("0x{:02x}", d.address.bus)},
                  {"slot", fmt::format("0x{:02x}", d.address.slot)},
                  {"function", fmt::format("0x{:x}", d.address.function)},
                  {"address_xml", libvirt_address(d.address)}};
  j["decimal"] = {{"domain", d.address.domain},
                  {"bus", d.address.bus},
                  {"slot", d.address.slot},
                  {"function", d.address.function}};
  Json uses = Json::array();
  for (const auto& u : ctx.impact().uses(d.address))
    uses.push_back(
        {{"kind", u.kind}, {"name", u.name}, {"detail", u.detail}, {"critical", u.critical}});
  j["host_uses"] = uses;
  j["passthrough"] = assessment_json(as);
  Json cj = Json::array();
  for (const auto& c : cv) cj.push_back({{"id", c.id}, {"text", c.text}});
  j["caveats"] = cj;
  (void)inv;
  return j;
}

void show_human(Context& ctx, Inventory& inv, Device& d, const Assessment& as,
                const std::vector<Caveat>& cv) {
  const auto& x = *d.details;
  auto& o = ctx.out;
  auto row = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) o << "  " << fmt::format("{:<15}", key) << printable(value) << '\n';
  };
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
  row("modules", x.modules.empty() ? "none match its modalias"
                                   : fmt::format("{}", fmt::join(x.modules, ", ")));
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
  if (!d.is_bridge() && !d.is_host_bridge()) {
    ResetAssessment reset = assess_reset(inv, d);
    row("reset", fmt::format("{}: {}", reset_verdict_id(reset.verdict), reset.reason));
    if (!reset.methods_from_kernel)
      row("", reset.methods.empty() ? "(the kernel lists no reset_method here)"
                                    : "(methods from config space: the kernel lists none)");
    if (!reset.fix.empty()) row("", "fix: " + reset.fix);
  }
  if (x.config) {
    std::string irq = x.config->msix            ? "MSI-X"
                      : x.config->msi           ? "MSI"
                      : x.config->interrupt_pin ? "INTx only"
                                                : "none";
    if (x.config->msix && x.config->msi) irq = "MSI, MSI-X";
    if (x.irq && *x.irq > 0) irq += fmt::format(" (IRQ {})", *x.irq);
    row("interrupts", irq);
    bool first = true;
    for (const auto& c : x.config->capabilities) {
      row(first ? "capabilities" : "", fmt::format("[{:03x}] {}{}", c.offset, c.name,
                                                   c.summary.empty() ? "" : ": " + c.summary));
      first = false;
    }
    for (const auto& p : x.config->problems) row("config space", p);
  } else {
    row("config space", x.config_error);
  }
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
  print_hidden_processes(ctx, ctx.impact());
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
