// A throw-away host tree on disk for tests: files, directories and relative symlinks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pcipass::test {

class TempTree {
 public:
  TempTree() {
    char tmpl[] = "/tmp/pcipass-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  // An existing directory, kept when the TempTree goes (tests/tools/fakekernel_main.cc: the
  // double over a tree that outlives one pcipass call).
  struct Adopt {};
  TempTree(Adopt, std::string root) : root_(std::move(root)), keep_(true) {}
  ~TempTree() {
    if (!keep_) std::filesystem::remove_all(root_);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const std::string& root() const { return root_; }
  std::string real(const std::string& host_path) const { return root_ + host_path; }

  // Each maker returns the tree, so a fixture reads as one chain: t.file(...).link(...).
  TempTree& file(const std::string& path, std::string_view content = {}) {
    std::filesystem::create_directories(std::filesystem::path(real(path)).parent_path());
    std::ofstream out(real(path), std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write " + real(path));
    return *this;
  }
  TempTree& dir(const std::string& path) {
    std::filesystem::create_directories(real(path));
    return *this;
  }
  // A symlink at `path` whose target is `target` (a host path), stored relative like sysfs does.
  TempTree& link(const std::string& path, const std::string& target) {
    auto from = std::filesystem::path(path).parent_path();
    std::filesystem::create_directories(real(from));
    std::filesystem::create_symlink(std::filesystem::path(target).lexically_relative(from),
                                    real(path));
    return *this;
  }
  // Removes a file, link or whole directory (nothing when absent).
  TempTree& remove(const std::string& path) {
    std::filesystem::remove_all(real(path));
    return *this;
  }
  std::string read(const std::string& path) const {
    std::ifstream in(real(path), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Every entry of the tree, sorted, one line each: a file with its mode and bytes, a link with
  // its target, a directory. Two equal states mean nothing in the tree was changed.
  std::string state() const {
    std::vector<std::string> lines;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root_)) {
      std::string rel = e.path().string().substr(root_.size());
      auto st = e.symlink_status();
      if (std::filesystem::is_symlink(st))
        lines.push_back(rel + " -> " + std::filesystem::read_symlink(e.path()).string());
      else if (std::filesystem::is_directory(st))
        lines.push_back(rel + "/");
      else
        lines.push_back(rel + " " + std::to_string(static_cast<int>(st.permissions())) + " [" +
                        read(rel) + "]");
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }

  // A PCI function with a 256-byte config space, a driver and optionally a group.
  void pci_device(const std::string& parent_dir, const std::string& addr, uint16_t vendor,
                  uint16_t device, uint32_t class_code, const std::string& driver = "",
                  int group = -1) {
    std::string dev = parent_dir + "/" + addr;
    std::string cfg(256, '\0');
    cfg[0] = static_cast<char>(vendor & 0xff), cfg[1] = static_cast<char>(vendor >> 8);
    cfg[2] = static_cast<char>(device & 0xff), cfg[3] = static_cast<char>(device >> 8);
    cfg[9] = static_cast<char>(class_code & 0xff),
    cfg[10] = static_cast<char>((class_code >> 8) & 0xff);
    cfg[11] = static_cast<char>(class_code >> 16);
    if ((class_code >> 8) == 0x0604) cfg[0x0e] = 1;
    file(dev + "/config", cfg);
    file(dev + "/driver_override", "(null)\n");
    link("/sys/bus/pci/devices/" + addr, dev);
    if (!driver.empty()) {
      dir("/sys/bus/pci/drivers/" + driver);
      link(dev + "/driver", "/sys/bus/pci/drivers/" + driver);
      link("/sys/bus/pci/drivers/" + driver + "/" + addr, dev);
    }
    if (group >= 0) {
      std::string g = "/sys/kernel/iommu_groups/" + std::to_string(group);
      link(dev + "/iommu_group", g);
      link(g + "/devices/" + addr, dev);
    }
  }

  // A GPU (VGA 01:00.0 and audio 01:00.1, group 3 with their root port 00:1c.0), a NIC
  // already on vfio-pci alone in group 2, the host's NIC in group 1 and the host bridge.
  void gpu_workstation() {
    const std::string bus = "/sys/devices/pci0000:00";
    pci_device(bus, "0000:00:00.0", 0x8086, 0x29c0, 0x060000, "", 0);
    pci_device(bus, "0000:00:01.0", 0x8086, 0x10d3, 0x020000, "e1000e", 1);
    pci_device(bus, "0000:00:02.0", 0x8086, 0x10d3, 0x020000, "vfio-pci", 2);
    pci_device(bus, "0000:00:1c.0", 0x8086, 0x2448, 0x060400, "pcieport", 3);
    pci_device(bus + "/0000:00:1c.0", "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau", 3);
    pci_device(bus + "/0000:00:1c.0", "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel", 3);
  }

 private:
  std::string root_;
  bool keep_ = false;
};

}  // namespace pcipass::test
