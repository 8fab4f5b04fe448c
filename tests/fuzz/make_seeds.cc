// Writes every target's seed corpus from the fixtures: make_seeds FIXTURES_DIR OUT_DIR makes
// OUT_DIR/TARGET/NAME files. Run by the fuzz build (target fuzz_seeds) and scripts/fuzz.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "assign/journal.h"
#include "change/store.h"
#include "fake_runner.h"
#include "fuzz_support.h"
#include "host_codec.h"
#include "mdev/mdev.h"
#include "pci/address.h"
#include "persist/assignments.h"
#include "setup/early_bind.h"
#include "setup/vfio.h"
#include "slots.h"

using namespace pcipass;
namespace fs = std::filesystem;

namespace {

fs::path out_dir;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::path dir = out_dir / target;
  fs::create_directories(dir);
  std::string file = name;
  for (char& c : file)
    if (c == '/' || c == ':' || c == ' ') c = '_';
  std::ofstream(dir / file, std::ios::binary) << bytes;
}

std::optional<std::string> read(const fs::path& p) {
  if (!fs::is_regular_file(p)) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void address_seeds(const std::string& host, const fs::path& root) {
  fs::path devices = root / "sys/bus/pci/devices";
  if (!fs::is_directory(devices)) return;
  for (const auto& e : fs::directory_iterator(devices)) {
    std::string name = e.path().filename();
    seed("address", host + "-" + name, name);
    if (auto a = parse_address(name)) {
      seed("address", host + "-libvirt-" + name, a->libvirt_name());
      seed("address", host + "-short-" + name, a->str().substr(5));
    }
    if (auto v = read(e.path() / "vendor"), d = read(e.path() / "device"); v && d)
      seed("address", host + "-id-" + name, v->substr(2, 4) + ":" + d->substr(2, 4));
    seed("address", host + "-path-" + name, fs::read_symlink(e.path()).string());
  }
}

void file_seeds(const std::string& host, const fs::path& root) {
  for (size_t i = 0; i < fuzz::count(fuzz::kCheckSlots); ++i)
    if (auto text = read(root / (fuzz::kCheckSlots[i] + 1)))
      seed("check_files", host + "-" + fuzz::kCheckSlots[i], std::string(1, char(i)) + *text);
  for (size_t i = 0; i < fuzz::count(fuzz::kImpactSlots); ++i)
    if (auto text = read(root / (fuzz::kImpactSlots[i] + 1)))
      seed("impact_files", host + "-" + fuzz::kImpactSlots[i], std::string(1, char(i)) + *text);
  if (auto cmdline = read(root / "proc/cmdline")) seed("cmdline", host + "-proc", *cmdline);
  if (auto grub = read(root / "etc/default/grub")) seed("cmdline", host + "-grub", *grub);
  if (auto ids = read(root / "usr/share/misc/pci.ids")) seed("pci_ids", host, *ids);
  auto passwd = read(root / "etc/passwd"), group = read(root / "etc/group");
  if (passwd || group) {
    std::string in;
    for (const auto& s :
         {passwd.value_or(""), group.value_or(""), std::string("libvirt-qemu:kvm")}) {
      for (char c : s) in += c == '\\' ? std::string("\\\\") : std::string(1, c);
      in += "\\\n";
    }
    seed("accounts", host, in);
  }
}

// Every device's attributes and config space, as sysfs_device records for device i.
void device_seeds(const std::string& host, const fs::path& root) {
  fs::path devices = root / "sys/bus/pci/devices";
  if (!fs::is_directory(devices)) return;
  int i = 0;
  for (const auto& e : fs::directory_iterator(devices)) {
    std::string records;
    for (size_t a = 0; a < fuzz::count(fuzz::kDeviceSlots); ++a) {
      std::string attr = fuzz::kDeviceSlots[a];
      bool link = attr.ends_with('@');
      if (link) attr.pop_back();
      fs::path p = e.path() / attr;
      std::optional<std::string> value;
      if (link && fs::is_symlink(p)) value = fs::read_symlink(p).string();
      if (!link) value = read(p);
      if (!value) continue;
      if (attr == "config") seed("config_space", host + "-" + e.path().filename().string(), *value);
      std::string rec = {char(i), char(a)};
      for (char c : *value) rec += c == '\\' ? std::string("\\\\") : std::string(1, c);
      records += rec + "\\\n";
    }
    seed("sysfs_device", host + "-" + e.path().filename().string(), records);
    ++i;
  }
}

void host_seeds(const std::string& host, const fs::path& root) {
  test::EncodeOptions json, user;
  json.flags = 8;  // --json, as root
  user.flags = 1;  // human output, as uid 1000
  seed("host", host + "-json", test::encode_host(root, json));
  seed("host", host + "-user", test::encode_host(root, user));
}

// Journals, states and manifests as pcipass writes them.
void state_seeds() {
  assign::Journal j;
  j.operation = "bind";
  j.driver = "vfio-pci";
  j.owner = "libvirt-qemu:kvm";
  j.pid = 4242;
  j.devices.push_back(
      {*parse_address("0000:01:00.0"), 1, {"nouveau", std::nullopt}, {"vfio-pci", "vfio-pci"}});
  j.devices.push_back(
      {*parse_address("0000:01:00.1"), 1, {std::nullopt, std::nullopt}, {"vfio-pci", "vfio-pci"}});
  test::MemFs m;
  (void)assign::save_journal(m, j);
  seed("journal", "bind-writing", *m.read(assign::kJournalPath, 1 << 20));
  j.operation = "release";
  j.phase = "committed";
  (void)assign::save_journal(m, j);
  seed("journal", "release-committed", *m.read(assign::kJournalPath, 1 << 20));
  assign::StateFile s;
  s.put({*parse_address("0000:01:00.0"), 1, "vfio-pci", {"nouveau", std::nullopt}, "qemu"});
  s.put({*parse_address("0000:02:00.0"), std::nullopt, "vfio-pci", {}, ""});
  (void)assign::save_state(m, s);
  seed("journal", "state", *m.read(assign::kStatePath, 1 << 20));

  test::MemFs host = fuzz::base_host();
  fuzz::NoLoader loader;
  test::FakeRunner runner;
  // No clock: programs ran at 0; no netlink.
  change::Ports ports{&loader, &runner, [](int) {}, {}, nullptr};
  auto r = setup::setup_vfio(host, ports, {"setup --vfio", 1795000000, false});
  if (!r || !r->applied.id) {
    std::cerr << "make_seeds: setup --vfio wrote no change set\n";
    return;
  }
  std::string dir = std::string(change::kStoreDir) + "/" + *r->applied.id;
  seed("manifest", "setup-vfio", *host.read(dir + "/manifest.json", 1 << 20));

  // A program that rewrites a guarded file (grubby and /etc/kernel/cmdline), and one left absent.
  (void)host.make_dirs("/etc/kernel", 0755);
  (void)host.write_atomic("/etc/kernel/cmdline", "root=/dev/sda1 ro  quiet\n", 0644);
  runner.observe = [&host](const Invocation&) {
    (void)host.write_atomic("/etc/kernel/cmdline", "root=/dev/sda1 ro quiet iommu=pt\n", 0644);
  };
  Invocation grubby;
  grubby.argv = {"grubby", "--update-kernel=ALL", "--args=iommu=pt"};
  std::vector<change::Change> plan = {change::Change::file_guard("/etc/kernel/cmdline"),
                                      change::Change::file_guard("/boot/loader/entries/x.conf"),
                                      change::Change::program_run(grubby)};
  auto g = change::apply_durable(host, plan, ports, {"setup --iommu", 1795000100, false});
  if (!g || !g->id) {
    std::cerr << "make_seeds: the guarded run wrote no change set\n";
    return;
  }
  dir = std::string(change::kStoreDir) + "/" + *g->id;
  seed("manifest", "setup-guarded", *host.read(dir + "/manifest.json", 1 << 20));
}

}  // namespace

// The boot loader fixtures (tests/fixtures/boot): their GRUB defaults and kernel command lines.
void boot_seeds() {
  fs::path dir = fs::path(PCIPASS_SOURCE_DIR) / "tests/fixtures/boot";
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_directory()) continue;
    std::string host = e.path().filename();
    if (auto g = read(e.path() / "etc/default/grub")) seed("grub_defaults", host, *g);
    if (fs::is_directory(e.path() / "etc/default/grub.d"))
      for (const auto& d : fs::directory_iterator(e.path() / "etc/default/grub.d"))
        if (auto g = read(d.path()))
          seed("grub_defaults", host + "-" + d.path().filename().string(), *g);
    if (auto c = read(e.path() / "boot/grub/grub.cfg")) seed("grub_defaults", host + "-cfg", *c);
    if (auto c = read(e.path() / "etc/kernel/cmdline")) seed("kernel_cmdline_file", host, *c);
    if (auto c = read(e.path() / "proc/cmdline")) seed("kernel_cmdline_file", host + "-proc", *c);
  }
  seed("grub_defaults", "awkward",
       "GRUB_DEFAULT='!Windows 2020'\r\nGRUB_CMDLINE_LINUX=\"intel_iommu=off rhgb\"\n"
       "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_"
       "DEFAULT "
       "amd_iommu=off\" # c\nexport X=${Y}'a b'\\\n\"c\"");
}

// Netlink: an attribute (header, payload, padding) and a message around a payload.
std::string nl_attr(uint16_t type, const std::string& payload) {
  nlattr h{static_cast<uint16_t>(NLA_HDRLEN + payload.size()), type};
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out += payload;
  out.resize(NLA_ALIGN(out.size()), '\0');
  return out;
}

template <typename T>
std::string raw(const T& v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string nl_message(uint16_t type, const std::string& payload) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + payload.size());
  h.nlmsg_type = type;
  return raw(h) + payload;
}

// Replies to RTM_GETLINK as the kernel shapes them (fuzz/vf_netlink.cc), and an ack.
// state_files (fuzz/state_files.cc): the first byte picks the file.
void state_file_seeds() {
  // docs/apply.md's examples, YAML and JSON.
  if (auto doc = read(PCIPASS_SOURCE_DIR "/docs/apply.md")) {
    int n = 0;
    for (size_t at = 0; (at = doc->find("```", at)) != std::string::npos;) {
      size_t body = doc->find('\n', at) + 1, end = doc->find("```", body);
      if (body == 0 || end == std::string::npos) break;
      if (doc->compare(at, 7, "```yaml") == 0 || doc->compare(at, 7, "```json") == 0)
        seed("state_files", "apply-" + std::to_string(n++), '\0' + doc->substr(body, end - body));
      at = end + 3;
    }
  }
  persist::Assignments a;
  persist::Assignment dev;
  dev.address = *parse_address("0000:01:00.0");
  dev.ids = {0x10de, 0x1b80, 0x1043, 0x8591};
  dev.driver = "vfio-pci";
  a.put(dev);
  persist::SriovEntry pf;
  pf.pf = *parse_address("0000:03:00.0");
  pf.vendor = 0x8086, pf.device = 0x1521, pf.num_vfs = 2, pf.driver = "vfio-pci";
  pf.vfs = {*parse_address("0000:03:10.0"), *parse_address("0000:03:10.4")};
  a.put_sriov(pf);
  seed("state_files", "assignments", '\1' + persist::render_assignments(a));
  mdev::Definition d{"0000:00:02.0",
                     "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
                     "mtty-2",
                     mdev::Start::kAuto,
                     {{"x", "1"}, {"y", "two words"}}};
  seed("state_files", "mdev", '\2' + mdev::config_text(d));
  seed("state_files", "udev",
       "\3# pcipass\n" + setup::udev_rule_line(*parse_address("0000:01:00.0"), 0x10de, 0x1b80) +
           "\n" + setup::udev_rule_line(*parse_address("0000:01:00.1"), 0x10de, 0x10f0) + "\n");
  // BLS entries as Fedora writes them, with and without grubenv's kernelopts.
  const fs::path fedora = PCIPASS_SOURCE_DIR "/tests/fixtures/boot/fedora-bls-grubby/boot";
  auto env = read(fedora / "grub2/grubenv");
  for (const auto& e : fs::directory_iterator(fedora / "loader/entries"))
    if (auto text = read(e.path())) {
      seed("state_files", "bls-" + e.path().filename().string(), '\4' + *text);
      if (env)
        seed("state_files", "bls-env-" + e.path().filename().string(),
             '\4' + *text + "options $kernelopts\n\x1e" + *env + "kernelopts=root=/dev/x ro\n");
    }
  if (auto k = read(PCIPASS_SOURCE_DIR
                    "/tests/fixtures/boot/popos-kernelstub/etc/kernelstub/configuration"))
    seed("state_files", "kernelstub", '\5' + *k);
}

void netlink_seeds() {
  std::string vfs;
  for (uint32_t vf : {0u, 1u}) {
    ifla_vf_mac mac{};
    mac.vf = vf;
    mac.mac[0] = 0x52, mac.mac[5] = static_cast<uint8_t>(vf);
    ifla_vf_vlan_info info{vf, 100, 0, htons(0x8100)};
    vfs += nl_attr(
        IFLA_VF_INFO | NLA_F_NESTED,
        nl_attr(IFLA_VF_MAC, raw(mac)) + nl_attr(IFLA_VF_VLAN, raw(ifla_vf_vlan{vf, 100, vf})) +
            nl_attr(IFLA_VF_VLAN_LIST | NLA_F_NESTED, nl_attr(IFLA_VF_VLAN_INFO, raw(info))) +
            nl_attr(IFLA_VF_SPOOFCHK, raw(ifla_vf_spoofchk{vf, 1})) +
            nl_attr(IFLA_VF_TRUST, raw(ifla_vf_trust{vf, UINT32_MAX})));
  }
  std::string attrs = nl_attr(IFLA_IFNAME, std::string("eni0np1", 8)) +
                      nl_attr(IFLA_ADDRESS, std::string("\x52\x54\0\0\0\1", 6)) +
                      nl_attr(IFLA_VFINFO_LIST | NLA_F_NESTED, vfs);
  seed("vf_netlink", "two-vfs", nl_message(RTM_NEWLINK, raw(ifinfomsg{}) + attrs));
  seed("vf_netlink", "error", nl_message(NLMSG_ERROR, raw(nlmsgerr{-EPERM, {}})));
  seed("vf_netlink", "ack", nl_message(NLMSG_ERROR, raw(nlmsgerr{0, {}})));
}

// Command lines as the README, docs/ and the man pages show them, on fuzz/command_line.cc's host
// (sriov-server: PF 0000:86:00.0 with VFs at 86:02.x, xHCI at 00:14.0, NVMe at 1a:00.0): the
// flags byte, then the words, NUL-separated.
void command_line_seeds() {
  const char* lines[] = {
      "check",
      "list",
      "ls --json",
      "list --group 13",
      "list --class net --driver iavf",
      "list --vendor 8086",
      "groups --json",
      "groups --group 4",
      "show 86:00.0",
      "show 8086:154c --json",
      "tree",
      "tree --format dot",
      "tree --format svg",
      "plan 86:02.0",
      "plan 00:1f.4 --with-group",
      "plan --json 0000:1a:00.0",
      "bind --dry-run 86:02.0",
      "bind 86:02.1 --owner root:kvm",
      "bind --persist --dry-run 00:14.0",
      "bind --force 1a:00.0",
      "release 86:02.5",
      "release --dry-run 86:02.6 --json",
      "status",
      "status --json",
      "recover",
      "recover --dry-run",
      "setup --iommu --dry-run",
      "setup --iommu --iommu-pt",
      "setup --vfio --dry-run --json",
      "setup --early-bind 86:02.0 --dry-run",
      "setup --iommu --boot-loader grub --dry-run",
      "setup --vfio --initramfs initramfs-tools",
      "setup --selinux --dry-run",
      "setup --iommu --undo --dry-run",
      "undo --list",
      "undo --list --json",
      "apply --dry-run",
      "apply --boot --dry-run",
      "facts",
      "xml 86:02.0",
      "xml --managed no 86:02.1",
      "qemu-args 86:02.0 --format proxmox",
      "qemu-args --x-vga --rom-file /tmp/rom 86:02.0",
      "hotplug 86:02.0 --qmp /run/qemu.sock --dry-run",
      "hotplug 86:02.5 --qmp /run/q.sock",
      "attach vm1 86:02.1",
      "detach vm1 86:02.1 --live",
      "unplug 86:02.5 --qmp /run/q --timeout 2",
      "attach vm1 86:02.0 --live --dry-run",
      "detach off 86:02.5 --config",
      "plan 86:02.0 --domain vm1",
      "doctor vfio-pci 0000:86:02.0: failed to setup container",
      "doctor --domain guest",
      "vf list",
      "vf list 86:00.0 --json",
      "vf create 86:00.0 4 --dry-run",
      "vf create 86:00.0 2 --bind vfio-pci --no-autoprobe",
      "vf remove 86:00.0 --dry-run",
      "vf set 86:00.0 3 --mac 52:54:00:12:34:56 --vlan 100 --dry-run",
      "vf set 86:00.0 0 --spoofchk off --trust on",
      "vf set 86:00.0 65536 --vlan 4096",
      "mdev types",
      "mdev list --defined",
      "mdev create 0000:00:02.0 i915-GVTg_V5_4 --dry-run",
      "mdev create 00:02.0 nvidia-63 --uuid 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 --auto",
      "mdev remove 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
      "mdev start-parent 00:02.0",
      "completion bash",
      "completion zsh",
      "--version",
      "--help",
      "list --group -7",
      "frobnicate",
      "show 86:00.0 86:00.0",
      "-- --json",
      "--pci-ids /nonexistent list"};
  int n = 0;
  for (const char* line : lines) {
    std::string bytes(1, '\0'), word;
    std::istringstream in(line);
    bool first = true;
    while (in >> word) {
      if (!first) bytes += '\0';
      bytes += word;
      first = false;
    }
    seed("command_line", std::to_string(n++), bytes);
    bytes[0] = '\3';  // a user on the live host
    seed("command_line", std::to_string(n++), bytes);
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: make_seeds FIXTURES_DIR OUT_DIR\n";
    return 2;
  }
  out_dir = argv[2];
  for (const auto& e : fs::directory_iterator(argv[1])) {
    if (!e.is_directory()) continue;
    std::string host = e.path().filename();
    address_seeds(host, e.path());
    file_seeds(host, e.path());
    device_seeds(host, e.path());
    host_seeds(host, e.path());
  }
  for (const char* s : {"01:00.0", "pci_0000_01_00_0", "10de:1b80", "10de:", "10de", "ffff:ff:1f.7",
                        "0000:00:00.0"})
    seed("address", std::string("typed-") + s, s);
  state_seeds();
  // mkinitcpio.conf and its drop-ins as the initramfs fixtures have them.
  for (const auto& e : fs::directory_iterator(PCIPASS_SOURCE_DIR "/tests/fixtures/initramfs"))
    for (const char* f : {"etc/mkinitcpio.conf", "etc/mkinitcpio.conf.d/pcipass.conf"})
      if (auto text = read(e.path() / f))
        seed("mkinitcpio_conf", e.path().filename().string(), *text);
  seed("mkinitcpio_conf", "multi-line",
       "MODULES=(\n  'ext4' # root\n  \"crc32c-intel\" \\\n)\nFILES=(\"/x (y)\")\n");
  boot_seeds();
  netlink_seeds();
  state_file_seeds();
  command_line_seeds();
  // QMP sessions captured from QEMU (tests/fixtures/qmp), replayed in pieces of 1, 7 and 64
  // bytes (the first byte picks the size: fuzz/qmp.cc).
  for (const auto& e : fs::directory_iterator(PCIPASS_SOURCE_DIR "/tests/fixtures/qmp"))
    if (e.path().extension() == ".txt")
      if (auto text = read(e.path()))
        for (char piece : {'\0', '\6', '?'})
          seed("qmp", e.path().stem().string() + "-" + std::to_string(int(piece)), piece + *text);
  // Domain XML as libvirt writes it (tests/fixtures/libvirt).
  for (const auto& e : fs::directory_iterator(PCIPASS_SOURCE_DIR "/tests/fixtures/libvirt"))
    if (e.path().extension() == ".xml")
      if (auto text = read(e.path())) seed("domain_xml", e.path().stem().string(), *text);
  // Failed VM starts (tests/fixtures/doctor): each log alone, and each with itself as the kernel
  // log (fuzz/doctor_log.cc); vm/ holds the tests/vm guest's real ones.
  for (const auto& e :
       fs::recursive_directory_iterator(PCIPASS_SOURCE_DIR "/tests/fixtures/doctor"))
    if (auto text = e.is_regular_file() ? read(e.path()) : std::nullopt) {
      std::string name = e.path().parent_path().filename().string() + "-" +
                         e.path().filename().string();  // vm/x.log and x.log both
      seed("doctor_log", name, std::string(1, '\0') + *text);
      seed("doctor_log", name + "-kernel", "\2" + *text + "\x1e" + *text);
    }
  // The fixtures have no accounts: the sample host's, as bind --owner reads them.
  seed("accounts", "sample",
       "root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:108::/var/lib/libvirt:/usr/sbin/"
       "nologin"
       "\n\\\nroot:x:0:\nkvm:x:108:libvirt-qemu\n\\\nlibvirt-qemu:kvm\\\n");
  seed("accounts", "numeric", "\\\n\\\n107:36\\\n");
  return 0;
}
