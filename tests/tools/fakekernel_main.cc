// pcipass-fakekernel: the pcipass command line over the sysfs double (tests/unit/fake_kernel.*)
// on a real directory, so that tests outside GoogleTest (the Cockpit page in a browser, the
// Ansible collection) can bind, release, create VFs and mdevs on a copy of a fixture tree and see
// the tree change as the kernel would change /sys. Test-only: never installed.
//
//   pcipass-fakekernel --root DIR [pcipass arguments...]
//
// The double keeps its state in DIR itself (driver links, driver_override, sriov_numvfs, mdev
// directories), so one call sees what the last one did. What the tree cannot say is kept in
// DIR/.fakekernel/natives, one "ADDRESS DRIVER" per line: the driver drivers_probe picks for a
// device with no driver_override (written on first use from the drivers bound then), and
// "ADDRESS/vf DRIVER" for the driver that probes a PF's new VFs (none unless a test adds it).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>

#include "cli/app.h"
#include "host/context.h"
#include "tests/unit/fake_kernel.h"
#include "tests/unit/temp_tree.h"

extern char** environ;

namespace {

using pcipass::HostFs;
using pcipass::test::FakeKernel;
using pcipass::test::TempTree;

// --root DIR or --root=DIR anywhere before a lone "--"; empty when absent.
std::string root_argument(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--root" && i + 1 < argc) return argv[i + 1];
    if (a.starts_with("--root=")) return std::string(a.substr(7));
  }
  return {};
}

using Natives = std::map<std::string, std::string>;

Natives read_natives(const std::string& file) {
  Natives n;
  std::ifstream in(file);
  std::string addr, driver;
  while (in >> addr >> driver) n[addr] = driver;
  return n;
}

// The drivers bound now, as the natives of a tree seen for the first time (vfio-pci is never
// a native: a device found on it has no driver to go back to).
Natives record_natives(const HostFs& fs, const std::string& file) {
  Natives n;
  for (const auto& addr : fs.list("/sys/bus/pci/devices").value_or({})) {
    auto driver = fs.link_basename("/sys/bus/pci/devices/" + addr + "/driver");
    if (driver && *driver != "vfio-pci") n[addr] = *driver;
  }
  std::filesystem::create_directories(std::filesystem::path(file).parent_path());
  std::ofstream out(file);
  for (const auto& [addr, driver] : n) out << addr << ' ' << driver << '\n';
  return n;
}

int read_int(const HostFs& fs, const std::string& path, int fallback, int base = 10) {
  auto v = fs.read_trimmed(path);
  if (!v) return fallback;
  try {
    return std::stoi(*v, nullptr, base);
  } catch (...) {
    return fallback;
  }
}

// Every PF in the tree (a device with sriov_totalvfs), with the tree's own values.
void adopt_sriov(FakeKernel& k, const HostFs& fs, const Natives& natives) {
  for (const auto& addr : fs.list("/sys/bus/pci/devices").value_or({})) {
    std::string dir = "/sys/bus/pci/devices/" + addr;
    if (!fs.exists(dir + "/sriov_totalvfs")) continue;
    FakeKernel::Sriov s;
    s.total = read_int(fs, dir + "/sriov_totalvfs", s.total);
    s.offset = read_int(fs, dir + "/sriov_offset", s.offset);
    s.stride = read_int(fs, dir + "/sriov_stride", s.stride);
    s.vf_device = static_cast<uint16_t>(read_int(fs, dir + "/sriov_vf_device", 0, 16));
    if (auto vf = natives.find(addr + "/vf"); vf != natives.end()) s.vf_driver = vf->second;
    k.sriov(addr, s);
  }
}

// Every mdev parent in the tree (/sys/class/mdev_bus), with its types as they stand.
void adopt_mdev_parents(FakeKernel& k, const HostFs& fs) {
  for (const auto& name : fs.list("/sys/class/mdev_bus").value_or({})) {
    auto device = fs.resolve("/sys/class/mdev_bus/" + name);
    if (!device) continue;
    std::vector<FakeKernel::MdevType> types;
    std::string types_dir = *device + "/mdev_supported_types";
    for (const auto& id : fs.list(types_dir).value_or({})) {
      std::string dir = types_dir + "/" + id;
      FakeKernel::MdevType t;
      t.id = id;
      t.name = fs.read_trimmed(dir + "/name").value_or(id);
      t.description = fs.read_trimmed(dir + "/description").value_or("");
      t.device_api = fs.read_trimmed(dir + "/device_api").value_or(t.device_api);
      t.instances = read_int(fs, dir + "/available_instances", t.instances);
      types.push_back(std::move(t));
    }
    k.mdev_parent(name, *device, std::move(types));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = root_argument(argc, argv);
  if (root.empty() || !std::filesystem::is_directory(root)) {
    std::cerr << "pcipass-fakekernel: --root DIR (a copy of a fixture tree) is required\n";
    return 2;
  }
  root = std::filesystem::canonical(root).string();
  TempTree tree(TempTree::Adopt{}, root);
  FakeKernel kernel(tree);
  std::string natives_file = root + "/.fakekernel/natives";
  Natives natives = std::filesystem::exists(natives_file) ? read_natives(natives_file)
                                                          : record_natives(kernel, natives_file);
  for (const auto& [addr, driver] : natives)
    if (addr.find('/') == std::string::npos) kernel.native(addr, driver);
  adopt_sriov(kernel, kernel, natives);
  adopt_mdev_parents(kernel, kernel);

  pcipass::test::FakeLoader loader(kernel);
  pcipass::cli::Injected injected;
  injected.fs = &kernel;
  injected.env.loader = &loader;
  injected.env.sleep_ms = [](int) {};
  injected.process = [](bool live) { return pcipass::make_process_context(environ, live); };
  return pcipass::cli::run(argc, argv, std::cout, std::cerr, &injected);
}
