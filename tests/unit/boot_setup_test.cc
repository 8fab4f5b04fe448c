// setup --iommu (and --iommu-pt, --hide-boot-framebuffer) on a fixture tree per boot loader
// (tests/fixtures/boot/NAME): golden output, diffs and recorded argv; idempotence; setup --undo
// byte for byte; a regeneration that drops the parameter, or fails, rolls every edit back; a
// fault at every write and every program leaves every file as it was; ambiguous detection refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <stdio.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "assign/assign.h"
#include "boot/grub_cfg.h"
#include "boot/loader.h"
#include "change/store.h"
#include "cli_harness.h"
#include "deny_fs.h"
#include "fake_runner.h"
#include "fault_fs.h"
#include "util/diff.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kNow = 1795000000;  // 2026-11-18 11:06:40 UTC

std::string source(const std::string& rel) {
  return std::string(PCIPASS_SOURCE_DIR) + "/" + rel;
}

std::string sh(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 256> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// Every file of the tree but pcipass's own records, with its bytes.
std::map<std::string, std::string> files(const TempTree& t) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(t.root())) {
    std::string rel = e.path().string().substr(t.root().size());
    if (rel.starts_with("/var/lib/pcipass") || rel.starts_with("/run/pcipass")) continue;
    if (e.is_regular_file()) out[rel] = t.read(rel);
  }
  return out;
}

// Written by the boot loader's programs (the fake's), not by pcipass.
bool generated(const std::string& path) {
  return path.ends_with("/grub.cfg") || path.starts_with("/boot/loader/entries/") ||
         path.starts_with("/boot/efi/loader/entries/") || path == "/etc/kernelstub/configuration";
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The boot loaders' programs, as far as their output matters: what each writes from the files
// pcipass edited. The GRUB defaults are read by /bin/sh, not by pcipass's own parser.
struct Emulator {
  TempTree& t;
  bool drops_parameters = false;  // a regeneration that silently loses the command line
  int dies_after = -1;            // grubby, kernelstub: files written before the program dies
  int written = 0;

  // One file rewritten by a program, unless it died before.
  void rewrite(const std::string& path, const std::string& bytes) {
    if (dies_after >= 0 && written >= dies_after) return;
    ++written;
    t.file(path, bytes);
  }
  // `line`'s words less `remove` and those `add` replaces, then `add` (as grubby and kernelstub).
  static std::string edited(const std::string& line, const std::vector<std::string>& add,
                            const std::vector<std::string>& remove) {
    std::vector<std::string> w = words(line);
    std::erase_if(w, [&](const std::string& x) {
      for (const auto& r : remove)
        if (x == r) return true;
      for (const auto& a : add)
        if (x.substr(0, x.find('=')) == a.substr(0, a.find('='))) return true;
      return false;
    });
    w.insert(w.end(), add.begin(), add.end());
    std::string out;
    for (const auto& x : w) out += (out.empty() ? "" : " ") + x;
    return out;
  }

  std::string grub_cmdline() {
    std::string r = t.root();
    return sh("cd '" + r +
              "' && sh -c '. ./etc/default/grub; for f in ./etc/default/grub.d/*.cfg; "
              "do [ -e \"$f\" ] && . \"$f\"; done; printf %s \"$GRUB_CMDLINE_LINUX "
              "$GRUB_CMDLINE_LINUX_DEFAULT\"' 2>/dev/null");
  }
  void grub_cfg(const std::string& path) {
    std::string args = drops_parameters ? "" : grub_cmdline();
    std::string cfg = "set default=\"0\"\n";
    auto kernels = boot::installed_kernels(*make_real_host_fs(t.root()));
    EXPECT_TRUE(kernels.ok());
    for (const auto& v : kernels.value_or({}))
      cfg += "menuentry 'Linux " + v + "' {\n\tlinux\t/boot/vmlinuz-" + v + " root=/dev/sda1 ro " +
             args + "\n}\n";
    t.file(path, cfg);
  }
  void entries_edit(const std::string& dir, const std::vector<std::string>& add,
                    const std::vector<std::string>& remove) {
    for (const auto& e : fs::directory_iterator(t.real(dir))) {
      std::string rel = dir + "/" + e.path().filename().string();
      std::istringstream in(t.read(rel));
      std::string out;
      for (std::string line; std::getline(in, line);) {
        if (line.starts_with("options") && !drops_parameters)
          line = "options " + edited(line.substr(7), add, remove);
        out += line + "\n";
      }
      rewrite(rel, out);
    }
  }
  // Fedora's grubby keeps future kernels in step: GRUB_CMDLINE_LINUX and /etc/kernel/cmdline.
  void grubby_defaults(const std::vector<std::string>& add,
                       const std::vector<std::string>& remove) {
    if (fs::exists(t.real("/etc/default/grub"))) {
      std::istringstream in(t.read("/etc/default/grub"));
      std::string out;
      for (std::string line; std::getline(in, line);) {
        if (line.starts_with("GRUB_CMDLINE_LINUX=\""))
          line = "GRUB_CMDLINE_LINUX=\"" + edited(line.substr(20, line.size() - 21), add, remove) +
                 "\"";
        out += line + "\n";
      }
      rewrite("/etc/default/grub", out);
    }
    if (fs::exists(t.real("/etc/kernel/cmdline")))
      rewrite("/etc/kernel/cmdline", edited(t.read("/etc/kernel/cmdline"), add, remove) + "\n");
  }
  void operator()(const Invocation& inv) {
    const auto& a = inv.argv;
    if (a[0] == "update-grub") grub_cfg("/boot/grub/grub.cfg");
    // proxmox-boot-tool refresh copies to the ESPs, which are not in the tree.
    if (a[0] == "grub2-mkconfig") grub_cfg(a[2]);
    if (a[0] == "kernel-install" && a[1] == "add") {
      std::string options = drops_parameters ? "" : t.read("/etc/kernel/cmdline");
      while (!options.empty() && options.back() == '\n') options.pop_back();
      t.file("/boot/efi/loader/entries/8a9b0c1d2e3f40516273849506a7b8c9-" + a[2] + ".conf",
             "title Debian\nversion " + a[2] + "\noptions " + options + "\nlinux /x/linux\n");
    }
    if (a[0] == "grubby") {
      std::vector<std::string> add, remove;
      for (const auto& x : a) {
        if (x.starts_with("--args=")) add = words(x.substr(7));
        if (x.starts_with("--remove-args=")) remove = words(x.substr(14));
      }
      grubby_defaults(add, remove);
      entries_edit("/boot/loader/entries", add, remove);
    }
    if (a[0] == "kernelstub" && a.size() == 3) {
      auto add = a[1] == "-a" ? std::vector<std::string>{a[2]} : std::vector<std::string>{};
      auto rm = a[1] == "-d" ? std::vector<std::string>{a[2]} : std::vector<std::string>{};
      auto j = nlohmann::json::parse(t.read("/etc/kernelstub/configuration"));
      auto& o = j["user"]["kernel_options"];
      for (auto it = o.begin(); it != o.end();) it = (*it == a[2]) ? o.erase(it) : it + 1;
      if (a[1] == "-a") o.push_back(a[2]);
      rewrite("/etc/kernelstub/configuration", j.dump(2));
      entries_edit("/boot/efi/loader/entries", add, rm);
    }
  }
};

class BootSetup : public ::testing::Test {
 protected:
  void load(const std::string& name) {
    fs::copy(source("tests/fixtures/boot/" + name), t.root(), fs::copy_options::recursive);
  }
  CliRun cli(HostFs& f, std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    cli::Injected i;
    i.fs = &f;
    i.env.runner = &runner;
    i.process = process_at(kNow);
    return run_cli(args, &i);
  }
  CliRun cli(std::vector<std::string> args) {
    FaultFs f(t);
    return cli(f, std::move(args));
  }
  std::string argvs() {
    std::string out;
    for (const auto& c : runner.calls) out += c.text() + "\n";
    return out;
  }
  // `args` with the process dying after change 1, 2, ... (every later write fails) until a run
  // completes; after each crash the reboot (/run gone), `recover`, then `check` of the host.
  // Returns how many crashes there were.
  int crash_at_every_change(const std::vector<std::string>& args,
                            const std::function<void(FaultFs&)>& check) {
    int crashes = 0;
    for (int n = 1;; ++n) {
      SCOPED_TRACE("crash after change " + std::to_string(n));
      {
        FaultFs f(t);
        f.crash_after(n);
        if (cli(f, args).status == 0) break;
      }
      ++crashes;
      fs::remove_all(t.real("/run"));
      FaultFs f(t);
      assign::Environment env;
      env.runner = &runner;
      auto r = assign::recover(f, env);
      EXPECT_TRUE(r.ok()) << r.error().message;
      check(f);
    }
    return crashes;
  }

  // `args` (after --root) on a fresh copy of boot fixture `name` with the grub emulator: how
  // many file changes a whole run makes, and (when asked) the programs it ran and the tree.
  int changes_on_copy(const std::string& name, const std::vector<std::string>& args, TempTree& copy,
                      FakeRunner& programs) {
    fs::copy(source("tests/fixtures/boot/" + name), copy.root(), fs::copy_options::recursive);
    FaultFs f(copy);
    Emulator em{copy};
    programs.observe = [&](const Invocation& inv) { em(inv); };
    cli::Injected i;
    i.fs = &f;
    i.env.runner = &programs;
    i.process = process_at(kNow);
    std::vector<std::string> argv{"--root", copy.root()};
    argv.insert(argv.end(), args.begin(), args.end());
    CliRun r = run_cli(argv, &i);
    EXPECT_EQ(r.status, 0) << r.err;
    return f.changes();
  }
  // `args` failing at each of its `writes` changes in turn: exit 1 and every file of t as in
  // `before`, grub.cfg as it was or regenerated (the undo program) from the restored files.
  void fault_at_every_change(const std::vector<std::string>& args, int writes,
                             std::map<std::string, std::string> before) {
    for (int n = 1; n <= writes; ++n) {
      SCOPED_TRACE("write " + std::to_string(n));
      FaultFs f(t);
      f.fail_at(n);
      CliRun r = cli(f, args);
      EXPECT_EQ(r.status, 1);
      auto now = files(t);
      now.erase("/boot/grub/grub.cfg");
      auto was = before;
      was.erase("/boot/grub/grub.cfg");
      EXPECT_EQ(now, was);
      if (t.read("/boot/grub/grub.cfg") != before["/boot/grub/grub.cfg"]) {
        EXPECT_EQ(t.read("/boot/grub/grub.cfg").find("intel_iommu"), std::string::npos);
      }
    }
  }

  TempTree t;
  FakeRunner runner;
  Emulator emulate{t};
};

std::string shown(const std::string& cmd, const CliRun& r) {
  std::string out = "$ pcipass " + cmd + "\n" + r.out + "[exit " + std::to_string(r.status) + "]\n";
  if (!r.err.empty()) out += "[stderr]\n" + r.err;
  return out;
}

struct FixtureCase {
  const char* name;
  std::vector<std::string> args;
  bool guarded = false;  // the loader's program rewrites guarded files: undo puts every byte back
};

const FixtureCase kFixtures[] = {
    {"debian-grub-bios", {"setup", "--iommu"}},
    {"debian-grub-uefi", {"setup", "--iommu", "--iommu-pt"}},
    {"ubuntu-grub-dropin", {"setup", "--iommu", "--hide-boot-framebuffer"}},
    {"fedora-bls-grubby", {"setup", "--iommu"}, true},
    {"popos-kernelstub", {"setup", "--iommu", "--iommu-pt"}, true},
    {"proxmox-boot-tool", {"setup", "--iommu"}},
    {"proxmox-boot-tool-grub", {"setup", "--iommu"}},
    {"debian-systemd-boot", {"setup", "--iommu", "--hide-boot-framebuffer"}},
    {"silverblue-rpm-ostree", {"setup", "--iommu"}},
};

class BootFixture : public BootSetup, public ::testing::WithParamInterface<FixtureCase> {};

// Golden: the output, the diff of every file, the argv run; then a second run changes nothing,
// and setup --undo puts every byte back (undo programs included).
TEST_P(BootFixture, SetupGoldenIdempotentAndUndoneByteForByte) {
  const FixtureCase& c = GetParam();
  load(c.name);
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  std::string cmd;
  for (size_t i = 0; i < c.args.size(); ++i) cmd += (i ? " " : "") + c.args[i];
  std::string got = shown(cmd, cli(c.args));
  auto after = files(t);
  got += "--- files\n";
  for (const auto& [path, bytes] : after) {
    auto it = before.find(path);
    if (it == before.end() || it->second != bytes)
      got += unified_diff(it == before.end() ? "" : it->second, bytes, path, it == before.end());
  }
  got += "--- argv\n" + argvs();
  runner.calls.clear();
  CliRun again = cli(c.args);
  got += "--- again\n" + shown(cmd, again) + "--- argv\n" + argvs();
  EXPECT_EQ(files(t), after) << "a second run changed a file";
  runner.calls.clear();
  CliRun undo = cli({"setup", "--undo"});
  got += "--- undo\n" + shown("setup --undo", undo) + "--- argv\n" + argvs();
  if (after != before) {
    EXPECT_EQ(undo.status, 0) << undo.err;
    auto undone = files(t);
    if (c.guarded) {
      EXPECT_EQ(undone, before) << "the whole tree, byte for byte";
    }
    // Files pcipass wrote, and those a guarded program rewrote: byte for byte. Files the boot
    // loader's programs write (regenerated by the undo programs, in the fake's own format):
    // without the parameters again.
    std::set<std::string> paths;
    for (const auto& m : {before, undone})
      for (const auto& [path, bytes] : m) paths.insert(path);
    for (const auto& path : paths) {
      if (!generated(path)) {
        EXPECT_EQ(undone[path], before[path]) << path;
        continue;
      }
      for (const char* p : {"intel_iommu=on", "iommu=pt", "initcall_blacklist=sysfb_init"})
        EXPECT_EQ(undone[path].find(p) == std::string::npos,
                  before[path].find(p) == std::string::npos)
            << path << " " << p;
    }
  }
  std::string golden = source(std::string("tests/fixtures/boot/") + c.name + ".golden");
  if (std::getenv("PCIPASS_UPDATE_GOLDEN")) {
    std::ofstream(golden, std::ios::binary) << got;
    return;
  }
  std::ifstream in(golden, std::ios::binary);
  ASSERT_TRUE(in) << golden << " is missing: run with PCIPASS_UPDATE_GOLDEN=1";
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), got);
}

INSTANTIATE_TEST_SUITE_P(Loaders, BootFixture, ::testing::ValuesIn(kFixtures),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST_F(BootSetup, DetectionNamesEachFixturesLoader) {
  const std::pair<const char*, const char*> expect[] = {
      {"debian-grub-bios", "update-grub"},
      {"debian-grub-uefi", "update-grub"},
      {"ubuntu-grub-dropin", "update-grub"},
      {"fedora-bls-grubby", "grubby"},
      {"popos-kernelstub", "kernelstub"},
      {"proxmox-boot-tool", "proxmox-boot-tool"},
      {"debian-systemd-boot", "systemd-boot"},
      {"silverblue-rpm-ostree", "rpm-ostree"},
      {"proxmox-boot-tool-grub", "proxmox-boot-tool-grub"}};
  for (const auto& [name, loader] : expect) {
    auto f = make_real_host_fs(source(std::string("tests/fixtures/boot/") + name));
    auto b = boot::detect(*f, std::nullopt);
    ASSERT_TRUE(b.ok()) << name << ": " << b.error().message;
    EXPECT_STREQ((*b)->name, loader) << name;
  }
}

// proxmox-boot-tool's mode is the ESPs' content (not mounted): it follows from how the host
// booted. UEFI without Secure Boot: systemd-boot; with Secure Boot (shim and GRUB): GRUB.
TEST_F(BootSetup, ProxmoxModeFollowsTheFirmwareAndSecureBoot) {
  load("proxmox-boot-tool");
  auto mode = [this] {
    auto b = boot::detect(*make_real_host_fs(t.root()), std::nullopt);
    return b ? std::string((*b)->name) : "error: " + b.error().message;
  };
  EXPECT_EQ(mode(), "proxmox-boot-tool");
  const std::string var =
      "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
  t.file(var, std::string("\x06\0\0\0\0", 5));
  EXPECT_EQ(mode(), "proxmox-boot-tool");
  t.file(var, std::string("\x06\0\0\0\x01", 5));
  EXPECT_EQ(mode(), "proxmox-boot-tool-grub");
}

TEST_F(BootSetup, TwoPlausibleLoadersAreRefusedNamingBoth) {
  load("debian-grub-bios");
  t.file("/boot/efi/loader/loader.conf", "timeout 3\n").dir("/boot/efi/EFI/systemd");
  t.file("/usr/bin/kernel-install", "");
  auto before = files(t);
  CliRun r = cli({"setup", "--iommu"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: cannot tell which boot loader this host uses: found update-grub "
            "(/etc/default/grub and /usr/sbin/update-grub); systemd-boot "
            "(/boot/efi/loader/loader.conf and /usr/bin/kernel-install)");
  EXPECT_NE(r.err.find("--boot-loader NAME"), std::string::npos) << r.err;
  EXPECT_EQ(files(t), before);
  EXPECT_TRUE(runner.calls.empty());
  runner.observe = [this](const Invocation& i) { emulate(i); };
  r = cli({"setup", "--iommu", "--boot-loader", "update-grub"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"update-grub"}}));
}

// kernelstub's configuration is anyone's edit: a "user" that is not an object threw from the JSON
// library (exit 70, "internal error") in check and setup.
TEST_F(BootSetup, AKernelstubConfigurationOfAnotherShapeIsAnErrorNotACrash) {
  load("popos-kernelstub");
  for (const char* user : {"5", "\"x\"", "[1]"}) {
    t.file("/etc/kernelstub/configuration", std::string("{\"user\": ") + user + "}");
    auto before = files(t);
    CliRun r = cli({"setup", "--iommu"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
              std::string("error: /etc/kernelstub/configuration: \"user\" is a ") +
                  (user[0] == '5'   ? "number"
                   : user[0] == '"' ? "string"
                                    : "array") +
                  ", not an object");
    EXPECT_EQ(files(t), before);
    EXPECT_TRUE(runner.calls.empty());
    EXPECT_NE(cli({"check"}).status, 70);
  }
}

TEST_F(BootSetup, NoLoaderIsRefused) {
  t.file("/proc/cpuinfo", "vendor_id\t: GenuineIntel\n");
  CliRun r = cli({"setup", "--iommu"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("cannot tell this host's boot loader"), std::string::npos) << r.err;
}

TEST_F(BootSetup, ARegenerationThatDropsTheParameterRollsEverythingBack) {
  load("debian-grub-bios");
  emulate.drops_parameters = true;
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  CliRun r = cli({"setup", "--iommu", "--vfio"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("update-grub did not carry the change into what the next boot uses: "
                       "/boot/grub/grub.cfg: default entry 'Linux 6.1.0-28-amd64' lacks "
                       "intel_iommu=on"),
            std::string::npos)
      << r.err;
  // Files back first, then the undo program regenerates from them.
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"update-grub"}, {"update-grub"}}));
  auto now = files(t);
  now.erase("/boot/grub/grub.cfg");  // regenerated by the fake from the restored files
  auto was = before;
  was.erase("/boot/grub/grub.cfg");
  EXPECT_EQ(now, was);
  EXPECT_EQ(t.read("/etc/default/grub"), before["/etc/default/grub"]);
}

TEST_F(BootSetup, AFailedRegenerationShowsItsStderrAndRollsBack) {
  load("debian-grub-bios");
  runner.on({"update-grub"}, FakeRunner::failure(1, "grub-mkconfig: /boot/grub: No space left\n"));
  auto before = files(t);
  CliRun r = cli({"setup", "--iommu", "--vfio"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("No space left"), std::string::npos) << r.err;
  EXPECT_EQ(files(t), before);
}

TEST_F(BootSetup, ParameterInTheFileButNotInGrubCfgRegeneratesOnly) {
  load("debian-grub-bios");
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n");
  runner.observe = [this](const Invocation& i) { emulate(i); };
  CliRun r = cli({"setup", "--iommu"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("regenerated it"), std::string::npos) << r.out;
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"update-grub"}}));
  EXPECT_EQ(t.read("/etc/default/grub"), "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n");
}

TEST_F(BootSetup, DryRunShowsTheDiffAndTheCommandOnly) {
  load("debian-grub-bios");
  auto before = files(t);
  CliRun r = cli({"setup", "--iommu", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("+GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\""), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("update-grub"), std::string::npos) << r.out;
  EXPECT_TRUE(runner.calls.empty());
  EXPECT_EQ(files(t), before);
  r = cli({"--json", "setup", "--iommu", "--vfio", "--dry-run"});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.setup/1");
  EXPECT_EQ(j["path"], "/etc/modules-load.d/pcipass.conf");
  EXPECT_EQ(j["kernel_cmdline"]["boot_loader"], "update-grub");
  EXPECT_EQ(j["kernel_cmdline"]["add"], nlohmann::json::array({"intel_iommu=on"}));
  EXPECT_EQ(j["kernel_cmdline"]["programs"], nlohmann::json::array({"update-grub"}));
}

// Every write and every program of `setup --iommu --vfio` failing in turn: every file as before.
// `pcipass apply FILE` with a boot section is setup's parts in its one plan: the same files and
// programs as `setup --iommu --vfio` on a first run, nothing (no file, no program) on a second,
// and a fault at every write or program leaves every file as it was.
TEST_F(BootSetup, ApplyFileTurnsTheIommuOnOnceAndRollsBackAtEveryFault) {
  load("ubuntu-grub-dropin");
  runner.observe = [this](const Invocation& i) { emulate(i); };
  TempTree scratch;
  scratch.file("/host.yaml", "version: 1\nboot:\n  iommu: true\n  vfio_early: true\n");
  std::string file = scratch.real("/host.yaml");
  auto before = files(t);
  TempTree probe, twin;
  FakeRunner r2, r3;
  int writes = changes_on_copy("ubuntu-grub-dropin", {"--json", "apply", file}, probe, r2);
  // What setup --iommu --vfio makes of the same tree, file for file and program for program.
  changes_on_copy("ubuntu-grub-dropin", {"setup", "--iommu", "--vfio"}, twin, r3);
  EXPECT_EQ(files(probe), files(twin));
  ASSERT_EQ(r2.calls.size(), r3.calls.size());
  for (size_t n = 0; n < r2.calls.size(); ++n) EXPECT_EQ(r2.calls[n].text(), r3.calls[n].text());
  ASSERT_GE(writes, 6);
  fault_at_every_change({"apply", file}, writes, before);
  CliRun first = cli({"--json", "apply", file});
  ASSERT_EQ(first.status, 0) << first.err;
  auto j = nlohmann::json::parse(first.out);
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["boot"]["change"], true);
  EXPECT_NE(argvs().find("update-grub"), std::string::npos) << argvs();
  auto after = files(t);
  EXPECT_NE(after["/boot/grub/grub.cfg"].find("intel_iommu=on"), std::string::npos);
  runner.calls.clear();
  CliRun second = cli({"--json", "apply", file});
  ASSERT_EQ(second.status, 0) << second.err;
  j = nlohmann::json::parse(second.out);
  EXPECT_EQ(j["changed"], false);
  EXPECT_EQ(j["boot"]["change"], false);
  EXPECT_EQ(j["steps"].size(), 0u);
  EXPECT_EQ(argvs(), "");
  EXPECT_EQ(files(t), after);
}

TEST_F(BootSetup, AFaultAtEveryWriteAndEveryProgramLeavesEveryFileAsItWas) {
  load("ubuntu-grub-dropin");
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  TempTree probe;
  FakeRunner programs;
  int writes =
      changes_on_copy("ubuntu-grub-dropin", {"setup", "--iommu", "--vfio"}, probe, programs);
  ASSERT_GE(writes, 6);
  fault_at_every_change({"setup", "--iommu", "--vfio"}, writes, before);
  // The program cannot be run: nothing changed.
  before = files(t);
  runner.not_found("update-grub");
  CliRun r = cli({"setup", "--iommu", "--vfio"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("update-grub: program not found"), std::string::npos) << r.err;
  EXPECT_EQ(files(t), before);
}

// grub2-mkconfig writes the grub.cfg the firmware's GRUB reads: BIOS /boot/grub2; UEFI the ESP's
// when it is a full configuration, /boot/grub2 when the ESP's only hands over (configfile).
TEST_F(BootSetup, Grub2MkconfigWritesTheGrubCfgThisHostBoots) {
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"quiet\"\n")
      .file("/usr/sbin/grub2-mkconfig", "");
  auto f = make_real_host_fs(t.root());
  auto argv = [&] { return (*boot::kGrub2MkconfigBackend.regenerate(*f))[0].program.argv; };
  ASSERT_STREQ((*boot::detect(*f, std::nullopt))->name, "grub2-mkconfig");
  EXPECT_EQ(argv(), (FakeRunner::Argv{"grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"}));
  t.dir("/sys/firmware/efi");
  t.file("/boot/efi/EFI/opensuse/grub.cfg", "set default=0\nmenuentry 'openSUSE' {\n}\n");
  EXPECT_EQ(argv(), (FakeRunner::Argv{"grub2-mkconfig", "-o", "/boot/efi/EFI/opensuse/grub.cfg"}));
  t.file("/boot/efi/EFI/opensuse/grub.cfg",
         "search --no-floppy --fs-uuid --set=dev 1234\nset prefix=($dev)/grub2\n"
         "configfile $prefix/grub.cfg\n");
  EXPECT_EQ(argv(), (FakeRunner::Argv{"grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"}));
}

// A directory a loader's files are found in that cannot be listed, or an ESP grub.cfg that
// cannot be read, is an error naming it, not "none there": grub2-mkconfig would write the BIOS
// grub.cfg the firmware does not read, kernel-install or kernelstub would pass kernels over.
TEST_F(BootSetup, UnreadableLoaderDirectoriesAreErrorsNotNone) {
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"quiet\"\n")
      .file("/usr/sbin/grub2-mkconfig", "")
      .dir("/sys/firmware/efi")
      .file("/boot/efi/EFI/opensuse/grub.cfg", "set default=0\nmenuentry 'openSUSE' {\n}\n");
  auto message = [](const auto& r) { return r.ok() ? "ok" : r.error().message; };
  EXPECT_EQ(message(boot::kGrub2MkconfigBackend.regenerate(test::DenyFs(t, {"/boot/efi/EFI"}))),
            "opendir /boot/efi/EFI: Permission denied");
  EXPECT_EQ(
      message(boot::kGrub2MkconfigBackend.regenerate(test::DenyFs(t, {"/boot/efi/EFI/opensuse"}))),
      "open /boot/efi/EFI/opensuse/grub.cfg: Permission denied");
  EXPECT_EQ(message(boot::kGrub2MkconfigBackend.regenerate(*make_real_host_fs(t.root()))), "ok");
  EXPECT_EQ(message(boot::kSystemdBootBackend.regenerate(test::DenyFs(t, {"/boot"}))),
            "opendir /boot: Permission denied");

  // `setup --iommu` on a copy of a boot fixture with `denied` unlistable: refused naming it,
  // every file as it was.
  auto refused = [&](const std::string& fixture, const std::string& denied) {
    SCOPED_TRACE(fixture);
    TempTree copy;
    fs::copy(source("tests/fixtures/boot/" + fixture), copy.root(), fs::copy_options::recursive);
    auto before = files(copy);
    test::DenyFs deny(copy, {denied});
    cli::Injected i;
    i.fs = &deny;
    i.env.runner = &runner;
    i.process = process_at(kNow);
    CliRun r = run_cli({"--root", copy.root(), "setup", "--iommu"}, &i);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("opendir " + denied + ": Permission denied"), std::string::npos) << r.err;
    EXPECT_EQ(files(copy), before);
    return r.err;
  };
  // BLS entries that cannot be listed are not "no entries": grubby still, not grub2-mkconfig
  // (which it supersedes, and whose grub.cfg the entries override).
  EXPECT_EQ(refused("fedora-bls-grubby", "/boot/loader/entries").find("grub2-mkconfig"),
            std::string::npos);
  refused("popos-kernelstub", "/boot/efi/loader/entries");
  EXPECT_TRUE(runner.calls.empty());
}

// A crash after every change of `setup --iommu --vfio` (the process dies: every later write fails),
// then the reboot and `recover`: every file pcipass writes is as it was, no set left applied.
TEST_F(BootSetup, RecoverAfterACrashAtEveryChange) {
  load("debian-grub-bios");
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  int crashes = crash_at_every_change({"setup", "--iommu", "--vfio"}, [&](FaultFs& f) {
    auto now = files(t);
    for (const auto& [path, bytes] : before) {
      if (!generated(path)) {
        EXPECT_EQ(now[path], bytes) << path;
      }
    }
    EXPECT_FALSE(now.contains("/etc/modules-load.d/pcipass.conf"));
    auto sets = change::list_change_sets(f);
    ASSERT_TRUE(sets.ok());
    for (const auto& set : *sets) EXPECT_NE(set.state, change::SetState::kApplied) << set.id;
  });
  EXPECT_GE(crashes, 5);
}

// --- guarded files: programs that rewrite files (grubby, kernelstub) are undone by their bytes

constexpr const char* kEntry =
    "/boot/loader/entries/4e9f7c1a2b3d4e5f6a7b8c9d0e1f2a3b-6.5.12-300.fc39.x86_64.conf";

// What an inverse command would not restore: spacing, a parameter given twice, a CRLF line.
void awkward_fedora(TempTree& t) {
  std::string entry = t.read(kEntry);
  auto at = entry.find("rhgb quiet");
  t.file(kEntry, entry.replace(at, 10, "rhgb  quiet quiet\r"));
  t.file("/etc/kernel/cmdline", "root=UUID=7d1c2e4f-aaaa-bbbb-cccc-ddddeeeeffff ro  rhgb quiet");
}

TEST_F(BootSetup, GrubbyIsUndoneByteForByteWithNoInverseCommand) {
  load("fedora-bls-grubby");
  awkward_fedora(t);
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  CliRun r = cli({"setup", "--iommu"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto after = files(t);
  for (const char* p : {kEntry, "/etc/default/grub", "/etc/kernel/cmdline"}) {
    EXPECT_NE(after[p], before[p]) << p << ": the fake grubby rewrites it";
    EXPECT_NE(after[p].find("intel_iommu=on"), std::string::npos) << p;
  }
  runner.calls.clear();
  CliRun undo = cli({"setup", "--undo"});
  ASSERT_EQ(undo.status, 0) << undo.err;
  EXPECT_EQ(files(t), before);
  EXPECT_TRUE(runner.calls.empty()) << argvs();
  EXPECT_NE(undo.out.find("restored /etc/kernel/cmdline"), std::string::npos) << undo.out;
}

// The program dies after rewriting some of the files: every guarded file is put back.
TEST_F(BootSetup, AGuardedProgramThatFailsHalfwayHasEveryFileRolledBack) {
  for (const char* fixture : {"fedora-bls-grubby", "popos-kernelstub"})
    for (int dies_after : {0, 1, 2, 3}) {
      SCOPED_TRACE(fmt::format("{}, dies after {} files", fixture, dies_after));
      TempTree tree;
      fs::copy(source(std::string("tests/fixtures/boot/") + fixture), tree.root(),
               fs::copy_options::recursive);
      if (std::string(fixture) == "fedora-bls-grubby") awkward_fedora(tree);
      Emulator em{tree};
      em.dies_after = dies_after;
      FakeRunner fake;
      fake.observe = [&](const Invocation& inv) { em(inv); };
      for (const char* program : {"grubby", "kernelstub"})
        fake.on_program(program, FakeRunner::failure(1, "No space left on device\n"));
      auto before = files(tree);
      FaultFs f(tree);
      cli::Injected i;
      i.fs = &f;
      i.env.runner = &fake;
      i.process = process_at(kNow);
      CliRun r = run_cli({"--root", tree.root(), "setup", "--iommu", "--iommu-pt"}, &i);
      EXPECT_EQ(r.status, 1);
      EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
      EXPECT_EQ(em.written, dies_after);
      EXPECT_EQ(files(tree), before);
      ASSERT_EQ(fake.calls.size(), 1u) << "no inverse command runs";
      auto sets = change::list_change_sets(f);
      ASSERT_TRUE(sets.ok()) << sets.error().message;
      ASSERT_EQ(sets->size(), 1u);
      EXPECT_EQ(sets->at(0).state, change::SetState::kRolledBack);
    }
}

TEST_F(BootSetup, AHandEditOfAGuardedFileMakesUndoRefuseNamingIt) {
  load("fedora-bls-grubby");
  runner.observe = [this](const Invocation& i) { emulate(i); };
  ASSERT_EQ(cli({"setup", "--iommu"}).status, 0);
  std::string edited = t.read(kEntry);
  edited.insert(edited.find("intel_iommu=on"), "nomodeset ");
  t.file(kEntry, edited);
  auto after = files(t);
  CliRun undo = cli({"setup", "--undo"});
  EXPECT_EQ(undo.status, 1);
  EXPECT_NE(undo.err.find(std::string("refusing to undo change set 20261118-110640: ") + kEntry +
                          " changed since pcipass wrote it"),
            std::string::npos)
      << undo.err;
  EXPECT_NE(undo.out.find("+options root=UUID=7d1c2e4f-aaaa-bbbb-cccc-ddddeeeeffff ro "
                          "rootflags=subvol=root rhgb quiet nomodeset intel_iommu=on"),
            std::string::npos)
      << undo.out;
  EXPECT_EQ(files(t), after) << "nothing was written";
  auto j = nlohmann::json::parse(cli({"--json", "undo"}).out);
  ASSERT_EQ(j["conflicts"].size(), 1u) << j.dump();
  EXPECT_EQ(j["conflicts"][0]["path"], kEntry);
}

TEST_F(BootSetup, DryRunNamesTheGuardedFiles) {
  load("fedora-bls-grubby");
  auto before = files(t);
  CliRun r = cli({"setup", "--iommu", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* entry : {"4e9f7c1a2b3d4e5f6a7b8c9d0e1f2a3b-0-rescue.conf",
                            "4e9f7c1a2b3d4e5f6a7b8c9d0e1f2a3b-6.5.12-300.fc39.x86_64.conf",
                            "4e9f7c1a2b3d4e5f6a7b8c9d0e1f2a3b-6.5.6-300.fc39.x86_64.conf"})
    EXPECT_NE(r.out.find(fmt::format("  guard /boot/loader/entries/{} (undo puts its bytes back)\n",
                                     entry)),
              std::string::npos)
        << r.out;
  EXPECT_NE(r.out.find("  guard /etc/default/grub (undo puts its bytes back)\n"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("/etc/kernel/cmdline"), std::string::npos) << "absent: not grubby's";
  EXPECT_TRUE(runner.calls.empty());
  EXPECT_EQ(files(t), before);
  auto j = nlohmann::json::parse(cli({"--json", "setup", "--iommu", "--dry-run"}).out);
  int guards = 0;
  for (const auto& step : j["steps"])
    if (step["kind"] == "guard") {
      ++guards;
      EXPECT_EQ(step["data"], "present");
    }
  EXPECT_EQ(guards, 4);
}

// A change set written before guards existed undoes with its inverse command, as it always did.
TEST_F(BootSetup, AnOldChangeSetWithAnInverseCommandStillUndoes) {
  load("fedora-bls-grubby");
  t.file("/var/lib/pcipass/changes/20261101-120000/manifest.json", R"({
  "schema": "pcipass.changes/1", "id": "20261101-120000", "command": "setup --iommu",
  "time": 1793534400, "state": "applied", "files": [], "dirs": [],
  "programs": [{"argv": ["grubby", "--update-kernel=ALL", "--args=intel_iommu=on"],
                "undo_argv": ["grubby", "--update-kernel=ALL", "--remove-args=intel_iommu=on"],
                "ran": {"exit_status": 0, "signal": 0, "timed_out": false, "time": 1793534400}}]
})");
  CliRun undo = cli({"setup", "--undo"});
  ASSERT_EQ(undo.status, 0) << undo.err;
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"grubby", "--update-kernel=ALL",
                                                            "--remove-args=intel_iommu=on"}}));
}

// Entries that say `options $kernelopts` have grubby edit grubenv, which GRUB rewrites at boot:
// no guard can hold it, so the inverse command stays the undo.
TEST_F(BootSetup, GrubbyWithKernelOptsKeepsItsInverseCommand) {
  load("fedora-bls-grubby");
  std::string entry = t.read(kEntry);
  auto from = entry.find("options ");
  t.file(kEntry, entry.replace(from, entry.find('\n', from) - from, "options $kernelopts"));
  t.file("/boot/grub2/grubenv", "# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro\n");
  runner.observe = [this](const Invocation& i) { emulate(i); };
  CliRun r = cli({"setup", "--iommu", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("guard "), std::string::npos) << r.out;
  ASSERT_EQ(cli({"setup", "--iommu"}).status, 0);
  runner.calls.clear();
  ASSERT_EQ(cli({"setup", "--undo"}).status, 0);
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"grubby", "--update-kernel=ALL",
                                                            "--remove-args=intel_iommu=on"}}));
}

// Without manage_mode kernelstub also writes an NVRAM entry with the options: once the files are
// back, undo runs plain kernelstub to write it from the restored configuration.
TEST_F(BootSetup, KernelstubOutsideManageModeIsRerunByUndo) {
  load("popos-kernelstub");
  auto j = nlohmann::json::parse(t.read("/etc/kernelstub/configuration"));
  j["user"]["manage_mode"] = false;
  t.file("/etc/kernelstub/configuration", j.dump(4));
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  ASSERT_EQ(cli({"setup", "--iommu", "--iommu-pt"}).status, 0);
  runner.calls.clear();
  CliRun undo = cli({"setup", "--undo"});
  ASSERT_EQ(undo.status, 0) << undo.err;
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"kernelstub"}}));
  auto now = files(t);
  EXPECT_EQ(now["/boot/efi/loader/entries/Pop_OS-current.conf"],
            before["/boot/efi/loader/entries/Pop_OS-current.conf"]);
}

// A crash at every change of `setup --iommu` on Fedora, then `recover`: every file, those grubby
// rewrote included, is as it was.
TEST_F(BootSetup, RecoverPutsBackWhatAGuardedProgramRewroteAfterACrashAtEveryChange) {
  load("fedora-bls-grubby");
  awkward_fedora(t);
  runner.observe = [this](const Invocation& i) { emulate(i); };
  auto before = files(t);
  int crashes =
      crash_at_every_change({"setup", "--iommu"}, [&](FaultFs&) { EXPECT_EQ(files(t), before); });
  EXPECT_GE(crashes, 3);
}

}  // namespace
}  // namespace pcipass::test
