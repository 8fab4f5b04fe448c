#include "cli/commands.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <charconv>

namespace pcipass::cli {

void add_devices(CLI::App& app, Args& a, bool required) {
  auto* opt = app.add_option("DEVICE", a.devices,
                             "0000:01:00.0, 01:00.0, pci_0000_01_00_0 or VENDOR:DEVICE");
  if (required) opt->required();
}

void add_driver_option(CLI::App& app, Args& a) {
  app.add_option("--driver", a.driver, "Driver to bind to: vfio-pci (default) or pci-stub")
      ->check(CLI::IsMember({"vfio-pci", "pci-stub"}));
}

Result<std::optional<int>> group_filter(const Args& a) {
  const std::string& s = a.group_filter;
  if (s.empty() && !a.group_given) return std::optional<int>();
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0)
    return Error::invalid(fmt::format("invalid IOMMU group '{}' for --group", s),
                          "IOMMU groups are numbered from 0 (see `pcipass groups`)");
  return std::optional<int>(v);
}

void add_group_option(CLI::App& app, Args& a, const std::string& help) {
  app.add_option_function<std::string>(
         "--group",
         [&a](const std::string& v) {
           a.group_filter = v;
           a.group_given = true;
         },
         help)
      ->option_text("N");
}

void setup_show(CLI::App& app, Args& a) {
  add_devices(app, a, true);
}

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"check",
       {},
       "Is this host ready for passthrough? One line per requirement, with fixes",
       [](CLI::App&, Args&) {},
       run_check},
      {"list",
       {"ls"},
       "Every PCI device with its driver, IOMMU group and passthrough verdict",
       setup_list,
       run_list},
      {"groups",
       {},
       "Every IOMMU group, its devices, and whether a VM could use it",
       setup_groups,
       run_groups},
      {"show", {"info"}, "Everything known about a device", setup_show, run_show},
      {"tree",
       {},
       "The PCI hierarchy, bridges and IOMMU groups (--format dot|svg: a picture)",
       setup_tree,
       run_tree},
      {"snapshot",
       {},
       "Capture this host's PCI, IOMMU and module state into a file for bug reports",
       setup_snapshot,
       run_snapshot},
      {"plan",
       {},
       "What binding devices would do: groups, drivers, what the host loses; changes nothing",
       setup_plan,
       run_plan},
      {"bind",
       {},
       "Give devices (and what their IOMMU group forces along) to vfio-pci, with rollback",
       setup_bind,
       run_bind},
      {"release",
       {"unbind", "reattach"},
       "Give devices bound by pcipass back to their host drivers",
       setup_release,
       run_release},
      {"status",
       {},
       "What pcipass has bound, from which drivers, and whether it still holds",
       [](CLI::App&, Args&) {},
       run_status},
      {"recover",
       {},
       "Restore the devices of a run that was interrupted (journal in /run/pcipass)",
       [](CLI::App&, Args&) {},
       run_recover},
      {"setup",
       {},
       "Make the host ready for passthrough across reboots (--iommu: the kernel command line; "
       "--vfio: VFIO at boot); undoable",
       setup_setup,
       run_setup},
      {"undo",
       {},
       "Revert a change set of setup byte for byte (--list: every change set)",
       setup_undo,
       run_undo},
      {"apply",
       {},
       "Bring the host to a desired-state FILE (YAML/JSON) as one plan, or bind the devices "
       "persisted with `bind --persist` (at boot: pcipass-apply.service)",
       setup_apply,
       run_apply},
      {"facts",
       {},
       "Ansible local facts (JSON): readiness, IOMMU groups, devices and their verdicts",
       [](CLI::App&, Args&) {},
       run_facts},
      {"xml",
       {},
       "libvirt <hostdev> elements for devices, multifunction cards kept in one guest slot",
       setup_xml,
       run_xml},
      {"qemu-args",
       {},
       "QEMU -device vfio-pci arguments, or Proxmox VE hostpci lines and PCI mappings",
       setup_qemu_args,
       run_qemu_args},
      {"hotplug",
       {},
       "Hot-plug a device into a running QEMU over QMP (bound to vfio-pci first if needed)",
       setup_hotplug,
       run_hotplug},
      {"unplug",
       {},
       "Hot-unplug a device from a running QEMU over QMP and wait for the guest to release it",
       setup_unplug,
       run_unplug},
      {"attach",
       {},
       "Give devices to a libvirt domain (its C API), after plan's checks and its slot budget",
       setup_attach,
       run_attach},
      {"detach",
       {},
       "Take devices out of a libvirt domain's running guest or definition",
       setup_detach,
       run_detach},
      {"doctor",
       {},
       "Explain a failed VM start: the cause on this host, its evidence and the fix",
       setup_doctor,
       run_doctor},
      {"vf",
       {},
       "SR-IOV virtual functions: list, create (optionally bound to vfio-pci), remove",
       setup_vf,
       run_vf},
      {"mdev",
       {},
       "Mediated devices: types, list, create, remove, start-parent; mdevctl's definitions",
       setup_mdev,
       run_mdev},
      {"completion",
       {},
       "Print the bash or zsh completion script (hidden: packages install its output)",
       setup_completion,
       run_completion},
  };
  return table;
}

}  // namespace pcipass::cli
