// Golden outputs: every command, human and JSON, on every host tree in tests/fixtures/hosts.
// PCIPASS_UPDATE_GOLDEN=1 rewrites tests/golden/ (review the diff before committing it).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "cli_harness.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(source_path("tests/fixtures/hosts")))
    if (e.is_directory()) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

struct GoldenCase {
  std::string name;
  std::vector<std::string> args;
};

// xml and qemu-args take the first endpoint of every IOMMU group with --with-group (every card
// the host has, multifunction ones included); on a host without groups, every endpoint, which
// the commands refuse.
std::vector<std::string> vm_devices(const std::string& root) {
  std::vector<std::string> firsts, all;
  std::set<std::string> groups;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root + "/sys/bus/pci/devices"))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    fs::path dir = root + "/sys/bus/pci/devices/" + name;
    std::string cls = read_all(dir / "class").substr(0, 6);
    // A snapshot keeps only what pcipass read: the class then lives in uevent (PCI_CLASS=60000).
    if (cls.empty()) {
      std::string uevent = read_all(dir / "uevent");
      size_t at = uevent.find("PCI_CLASS=");
      if (at != std::string::npos)
        cls = fmt::format("0x{:04x}", std::stoul(uevent.substr(at + 10), nullptr, 16) >> 8);
    }
    if (cls == "0x0600" || cls == "0x0604" || cls == "0x0607") continue;  // host bridge, bridges
    all.push_back(name);
    if (!fs::is_symlink(dir / "iommu_group")) continue;
    if (groups.insert(fs::read_symlink(dir / "iommu_group").filename()).second)
      firsts.push_back(name);
  }
  return groups.empty() ? all : firsts;
}

void add_vm_cases(const std::string& root, std::vector<GoldenCase>& cases) {
  std::vector<std::string> devices = vm_devices(root);
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), devices.begin(), devices.end());
    return args;
  };
  cases.push_back({"xml", with({"--root", root, "xml", "--with-group"})});
  cases.push_back({"xml.json", with({"--root", root, "--json", "xml", "--with-group"})});
  cases.push_back({"qemu-args", with({"--root", root, "qemu-args", "--with-group"})});
  cases.push_back(
      {"qemu-args.pc", with({"--root", root, "qemu-args", "--with-group", "--machine", "pc"})});
  cases.push_back(
      {"qemu-args.json", with({"--root", root, "--json", "qemu-args", "--with-group"})});
  cases.push_back(
      {"proxmox", with({"--root", root, "qemu-args", "--with-group", "--format", "proxmox"})});
  cases.push_back({"proxmox.pc", with({"--root", root, "qemu-args", "--with-group", "--format",
                                       "proxmox", "--machine", "pc", "--rom-bar", "off"})});
  cases.push_back({"proxmox-mapping", with({"--root", root, "qemu-args", "--with-group", "--format",
                                            "proxmox-mapping", "--node", "pve"})});
  cases.push_back(
      {"proxmox-mapping.json", with({"--root", root, "--json", "qemu-args", "--with-group",
                                     "--format", "proxmox-mapping", "--node", "pve"})});
}

std::vector<GoldenCase> cases_for(const std::string& root) {
  std::vector<GoldenCase> cases;
  for (const char* cmd : {"check", "list", "groups", "tree"}) {
    cases.push_back({cmd, {"--root", root, cmd}});
    cases.push_back({std::string(cmd) + ".json", {"--root", root, "--json", cmd}});
  }
  cases.push_back({"tree.dot", {"--root", root, "tree", "--format", "dot"}});
  std::vector<std::string> show = {"--root", root, "show"};
  for (const auto& e : fs::directory_iterator(root + "/sys/bus/pci/devices"))
    show.push_back(e.path().filename());
  std::sort(show.begin() + 3, show.end());
  if (show.size() > 3) {
    cases.push_back({"show", show});
    show.insert(show.begin() + 2, "--json");
    cases.push_back({"show.json", show});
  }
  add_vm_cases(root, cases);
  return cases;
}

class Golden : public ::testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

TEST_P(Golden, MatchesRecordedOutput) {
  std::string root = source_path("tests/fixtures/hosts/" + GetParam());
  fs::path dir = source_path("tests/golden/" + GetParam());
  bool update = std::getenv("PCIPASS_UPDATE_GOLDEN") != nullptr;
  if (update) fs::create_directories(dir);
  for (const auto& c : cases_for(root)) {
    CliRun r = run_cli(c.args);
    std::string got = r.out + "[exit " + std::to_string(r.status) + "]\n";
    if (!r.err.empty()) got += "[stderr]\n" + r.err;
    fs::path file = dir / c.name;
    if (update) {
      std::ofstream(file, std::ios::binary) << got;
      continue;
    }
    ASSERT_TRUE(fs::exists(file)) << file << " is missing: run with PCIPASS_UPDATE_GOLDEN=1";
    EXPECT_EQ(read_all(file), got) << "pcipass output changed for " << GetParam() << " " << c.name;
  }
}

// libvirt's own schema on `pcipass xml`. virt-xml-validate takes whole documents only (its schema
// names are the files of /usr/share/libvirt/schemas: domain, network, ...; there is no device
// schema), so the hostdevs go into a minimal q35 domain.
const char* kValidator = "/usr/bin/virt-xml-validate";

int validate_domain(const std::string& hostdevs, std::string& output) {
  char tmpl[] = "/tmp/pcipass-xml-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::ofstream(dir + "/domain.xml")
      << "<domain type='kvm'>\n  <name>pcipass-validate</name>\n"
         "  <memory unit='KiB'>1048576</memory>\n"
         "  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n"
         "  <devices>\n"
      << hostdevs << "  </devices>\n</domain>\n";
  std::string cmd =
      std::string(kValidator) + " " + dir + "/domain.xml domain >" + dir + "/out 2>&1";
  int status = std::system(cmd.c_str());
  output = read_all(dir + "/out");
  fs::remove_all(dir);
  return status;
}

class LibvirtSchema : public ::testing::TestWithParam<std::string> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LibvirtSchema);

TEST_P(LibvirtSchema, XmlValidates) {
  if (!fs::exists(kValidator))
    GTEST_SKIP() << kValidator << " is missing: libvirt's schema check needs Debian's "
                 << "libvirt-clients (scripts/install-deps installs it)";
  std::string root = source_path("tests/fixtures/hosts/" + GetParam());
  std::vector<std::string> args = {"--root", root, "xml", "--with-group"};
  for (const auto& d : vm_devices(root)) args.push_back(d);
  for (const auto& extra :
       std::vector<std::vector<std::string>>{{}, {"--managed", "no", "--rom-bar", "off"}}) {
    auto a = args;
    a.insert(a.begin() + 3, extra.begin(), extra.end());
    CliRun r = run_cli(a);
    if (r.status != 0) {  // a host without IOMMU groups: the refusal is in the goldens
      EXPECT_NE(r.err.find("no IOMMU group"), std::string::npos) << r.err;
      continue;
    }
    std::string out;
    EXPECT_EQ(validate_domain(r.out, out), 0) << r.out << out;
  }
}

TEST(LibvirtSchemaCheck, CanFail) {
  if (!fs::exists(kValidator)) GTEST_SKIP() << kValidator << " is missing (libvirt-clients)";
  std::string out;
  EXPECT_EQ(validate_domain("<hostdev mode='subsystem' type='pci' managed='yes'>\n"
                            "  <source>\n"
                            "    <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
                            "  </source>\n</hostdev>\n",
                            out),
            0)
      << out;
  EXPECT_NE(validate_domain("<hostdev mode='subsystem' type='pci' managed='maybe'>\n"
                            "  <source>\n"
                            "    <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
                            "  </source>\n</hostdev>\n",
                            out),
            0);
}

INSTANTIATE_TEST_SUITE_P(Hosts, LibvirtSchema, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

INSTANTIATE_TEST_SUITE_P(Hosts, Golden, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace pcipass::test
