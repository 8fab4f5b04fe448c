// Every command line a user can type, run on a fixture host in a MemFs (sriov-server: SR-IOV PFs
// and VFs, NVMe, a GPU behind a bridge, a multi-device group; with the Debian GRUB and
// initramfs-tools fixtures laid over it, so that setup and undo have a boot loader and an
// initramfs to change), through the whole CLI: CLI11's
// parsing, each command's own values (addresses and selectors, --group, vf set's MAC, VLAN and
// index, mdev UUIDs and parents, setup's --initramfs and --boot-loader, the driver, the owner ...)
// and whatever the command then does to the host. The input is a flags byte and the words,
// separated by NUL bytes; flags bit 0 runs as a user (uid 1000), bit 1 as the live host (--root
// /), bit 2 with --color always.
// Nothing reaches the machine that runs the fuzzer: the host is the MemFs, programs a fake
// runner, modules a loader that loads nothing, VF settings a port that remembers them, libvirt a
// fake with two q35 domains (vm1 running, off shut off; tests/fixtures/libvirt), QMP a QEMU in
// memory that answers as the captured q35 session; `snapshot` (it writes its archive
// where -o says, on this machine) is not run. --pci-ids, `apply FILE` and `doctor --log FILE`
// read this machine's files, as pcipass does.
// Oracles: no internal error (exit 70: an exception that escaped every check); with --json
// before "--" (and no --help or --version), stdout is one JSON document; a failure says something
// (a refused plan says why on stdout); a usage error (exit 2) and a run with --dry-run change
// nothing on the host (no file but the lock, no program run, no VF setting, no libvirt domain,
// no QEMU device added or deleted).
#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "assign/journal.h"
#include "cli/app.h"
#include "cli_harness.h"
#include "fake_libvirt.h"
#include "fake_runner.h"
#include "fuzz_support.h"

using namespace pcipass;

namespace {

constexpr size_t kMaxWords = 24;

std::string fixture(const std::string& rel) {
  std::ifstream in(PCIPASS_SOURCE_DIR + ("/" + rel), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A QEMU in memory, answering as the captured q35 session (tests/fixtures/qmp) does: the greeting,
// capabilities, its query-pci, an empty QOM, a running guest; device_add succeeds, device_del
// too, followed by the guest's DEVICE_DELETED. Each command is one write (the client writes a
// message and its newline at once); what was executed is kept for the dry-run oracle.
class MemQemuStream final : public vm::QmpStream {
 public:
  explicit MemQemuStream(std::vector<std::string>& executed) : executed_(executed) {
    out_ = first_line(fixture_text()) + "\n";
  }
  Result<vm::Chunk> read(int, size_t max_bytes) override {
    vm::Chunk c;
    if (out_.empty()) {
      c.kind = vm::Chunk::Kind::kTimeout;
      return c;
    }
    c.data = out_.substr(0, max_bytes);
    out_.erase(0, c.data.size());
    return c;
  }
  Status write(std::string_view bytes) override {
    auto cmd = nlohmann::json::parse(bytes, nullptr, false);
    if (!cmd.is_object()) return {};
    std::string name = cmd.contains("execute") && cmd["execute"].is_string() ? cmd["execute"] : "";
    executed_.push_back(name);
    nlohmann::json reply = {{"return", nlohmann::json::object()}};
    if (name == "query-pci") reply["return"] = query_pci();
    if (name == "qom-list") reply["return"] = nlohmann::json::array();
    if (name == "query-status") reply["return"] = {{"status", "running"}, {"running", true}};
    if (cmd.contains("id")) reply["id"] = cmd["id"];
    out_ += reply.dump() + "\n";
    const auto& args = cmd.contains("arguments") ? cmd["arguments"] : nlohmann::json();
    if (name == "device_del" && args.is_object() && args.contains("id") && args["id"].is_string()) {
      std::string id = args["id"];
      nlohmann::json data = {{"device", id}, {"path", "/machine/peripheral/" + id}};
      out_ += nlohmann::json{{"event", "DEVICE_DELETED"}, {"data", data}}.dump() + "\n";
    }
    return {};
  }

 private:
  static const std::string& fixture_text() {
    static const std::string text = fixture("tests/fixtures/qmp/q35-session.txt");
    return text;
  }
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }
  static const nlohmann::json& query_pci() {
    static const nlohmann::json r = [] {
      std::istringstream in(fixture_text());
      for (std::string line; std::getline(in, line);)
        if (auto j = nlohmann::json::parse(line, nullptr, false);
            j.is_object() && j.contains("return") && j["return"].is_array())
          return j["return"];
      return nlohmann::json::array();
    }();
    return r;
  }
  std::string out_;
  std::vector<std::string>& executed_;
};

class MemQemu final : public vm::QmpConnector {
 public:
  Result<std::unique_ptr<vm::QmpStream>> connect(const std::string&) override {
    return std::unique_ptr<vm::QmpStream>(std::make_unique<MemQemuStream>(executed));
  }
  bool changed() const {
    return std::find_if(executed.begin(), executed.end(), [](const std::string& e) {
             return e == "device_add" || e == "device_del";
           }) != executed.end();
  }
  std::vector<std::string> executed;
};

// Every VF of every interface starts with no MAC and no VLAN; what is set is remembered.
class MemVfLinks final : public change::VfLinkPort {
 public:
  Result<change::VfSetting> get(const std::string& ifname, int vf,
                                change::VfField field) const override {
    for (const auto& [key, s] : set_)
      if (key.first == ifname && key.second == vf && s.field == field) return s;
    change::VfSetting s;
    s.field = field;
    return s;
  }
  Status set(const std::string& ifname, int vf, const change::VfSetting& s) override {
    std::erase_if(set_, [&](const auto& e) {
      return e.first.first == ifname && e.first.second == vf && e.second.field == s.field;
    });
    set_.push_back({{ifname, vf}, s});
    ++sets;
    return {};
  }
  int sets = 0;

 private:
  std::vector<std::pair<std::pair<std::string, int>, change::VfSetting>> set_;
};

// Built once, then put back after each input (MemFs::rollback): see fuzz::ScratchHost.
test::MemFs& debian_host() {
  static test::MemFs* host = [] {
    auto* h = new test::MemFs(fuzz::base_host("sriov-server"));
    for (const char* dir : {"/tests/fixtures/boot/debian-grub-bios",
                            "/tests/fixtures/initramfs/debian-initramfs-tools"})
      h->load_dir(PCIPASS_SOURCE_DIR + std::string(dir));
    h->checkpoint();
    return h;
  }();
  return *host;
}

struct Rollback {
  test::MemFs& fs;
  ~Rollback() { fs.rollback(); }
};

std::string vfio_listing() {
  std::string out;
  for (const char* release : {"6.1.0-27-amd64", "6.1.0-28-amd64"})
    for (const char* ko : {"vfio/vfio.ko", "vfio/vfio_iommu_type1.ko", "vfio/pci/vfio-pci.ko",
                           "vfio/vfio_virqfd.ko"})
      out += std::string("usr/lib/modules/") + release + "/kernel/drivers/" + ko + "\n";
  return out;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string_view::npos) end = text.size();
    words.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

// The lock every changing run takes before it reads the host's state (src/assign/journal.h), and
// the directories made for it: pcipass's own, not the host's, and taken before the command's
// later checks (an unknown --owner) can fail.
bool lock_only(const std::string& path) {
  std::string_view lock = assign::kLockPath;
  return path == lock || (lock.starts_with(path) && lock[path.size()] == '/');
}

bool before_dashes(const std::vector<std::string>& words, std::string_view word) {
  for (const auto& w : words) {
    if (w == "--") return false;
    if (w == word) return true;
  }
  return false;
}

// --help, --version or -h, alone or first of a group of short flags (-hv): the help or version
// text, which --json does not change. Anywhere: CLI11 hands the words after "--" of a command
// that takes no positional arguments back to its parent, which honours a -h among them.
bool asks_help(const std::vector<std::string>& words) {
  for (const auto& w : words) {
    if (w.starts_with("--help") || w.starts_with("--version") || w.starts_with("-h")) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t flags = data[0];
  auto words = words_of(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  if (words.size() > kMaxWords) return 0;
  if (std::find(words.begin(), words.end(), "snapshot") != words.end()) return 0;

  test::MemFs& host = debian_host();
  Rollback put_back{host};
  fuzz::NoLoader loader;
  test::FakeRunner runner, local_runner;
  // Images that hold the VFIO modules, so that setup --vfio can succeed (--early-bind's udev rule
  // is in none: its check fails and the set rolls back).
  runner.on_program("lsinitramfs", test::FakeRunner::success(vfio_listing()));
  MemVfLinks vf_links;
  test::FakeLibvirt libvirt;
  static const std::string q35 = fixture("tests/fixtures/libvirt/q35-hostdev.xml");
  libvirt.domains["vm1"] = {q35, q35, vm::DomainState::kRunning};
  libvirt.domains["off"] = {q35, q35, vm::DomainState::kShutoff};
  MemQemu qmp;
  cli::Injected inj;
  inj.fs = &host;
  inj.env.loader = &loader;
  inj.env.runner = &runner;
  inj.env.vf_links = &vf_links;
  inj.env.node_wait_ms = 0;
  inj.libvirt = &libvirt;
  inj.qmp = &qmp;
  inj.local_runner = &local_runner;
  // A clock that moves with every look and every sleep: a wait for something that never comes
  // (unplug's --timeout) ends, at no real cost.
  auto clock = std::make_shared<int64_t>(1795000000);
  inj.env.sleep_ms = [clock](int ms) { *clock += ms / 1000 + 1; };
  inj.process = [flags, clock](bool live) {
    ProcessContext p;
    p.uid = (flags & 1) ? 1000 : 0;
    p.live = live;
    p.now = [clock] { return (*clock)++; };
    p.sleep_ms = [clock](int ms) { *clock += ms / 1000 + 1; };
    p.random = [](unsigned char* out, size_t n) {
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(0x5a + i);
      return true;
    };
    return p;
  };
  std::vector<std::string> args = {"--root", (flags & 2) ? "/" : "/tmp"};
  if (flags & 4) args.push_back("--color=always");
  args.insert(args.end(), words.begin(), words.end());
  test::CliRun r = test::run_cli(args, &inj);

  std::string line = "pcipass";
  for (const auto& w : words) line += " '" + w + "'";
  if (r.status == cli::kExitInternal) fuzz::violated(line + ": internal error: " + r.err);
  bool help = asks_help(words);
  if (before_dashes(words, "--json") && !help && !nlohmann::json::accept(r.out))
    fuzz::violated(line + " printed no valid JSON document: " + r.out.substr(0, 200));
  if (r.status != 0 && r.err.empty() && r.out.empty()) fuzz::violated(line + " failed silently");
  bool must_not_change = r.status == cli::kExitUsage || before_dashes(words, "--dry-run");
  if (must_not_change) {
    std::string why = r.status == cli::kExitUsage ? " (a usage error)" : " (a dry run)";
    for (const auto& path : host.changed())
      if (!lock_only(path)) fuzz::violated(line + " changed " + path + why);
    if (!runner.calls.empty())
      fuzz::violated(line + " ran " +
                     (runner.calls[0].argv.empty() ? "" : runner.calls[0].argv[0]) + why);
    if (vf_links.sets > 0) fuzz::violated(line + " set a VF" + why);
    if (!libvirt.changes().empty()) fuzz::violated(line + " changed a libvirt domain" + why);
    if (qmp.changed()) fuzz::violated(line + " added or deleted a device in QEMU" + why);
  }
  return 0;
}
