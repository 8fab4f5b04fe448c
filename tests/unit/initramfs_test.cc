// The initramfs part of setup on fixture trees of each system (tests/fixtures/initramfs): the
// detection, the edits as golden diffs, the regeneration and listing commands' argv, the check
// of every image (a regeneration that dropped vfio-pci rolls everything back), and a fault at
// every write and every command leaving every file as it was.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_harness.h"
#include "deny_fs.h"
#include "fake_runner.h"
#include "fault_fs.h"
#include "initramfs/initramfs.h"
#include "initramfs/mkinitcpio_conf.h"
#include "setup/host_setup.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;
using Argv = std::vector<std::string>;

constexpr int64_t kNow = 1795000000;  // 2026-11-18 11:06:40 UTC

void load(TempTree& t, const std::string& name) {
  fs::copy(source_path("tests/fixtures/initramfs/" + name), t.root(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

// Every file but pcipass's own records, with its mode and bytes.
std::string files_state(const TempTree& t) {
  std::string out;
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(t.root())) {
    std::string rel = e.path().string().substr(t.root().size());
    if (rel.starts_with("/var") || rel.starts_with("/run")) continue;
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    std::string line = rel + " " + std::to_string(st.st_mode);
    if (e.is_regular_file()) line += " [" + t.read(rel) + "]";
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// What a lister prints for an image of `release` holding the vfio modules (or not vfio-pci).
std::string listing(const std::string& release, bool with_vfio_pci = true,
                    const std::string& extra = {}) {
  std::string dir = "usr/lib/modules/" + release + "/kernel/drivers/vfio/";
  std::string s = "kernel/x86/microcode/GenuineIntel.bin\nusr/lib/modules/" + release + "\n" + dir +
                  "vfio.ko\n" + dir + "vfio_iommu_type1.ko.xz\n" + dir + "vfio_virqfd.ko\n" + dir +
                  "pci/vfio-pci-core.ko\n";
  if (with_vfio_pci) s += dir + "pci/vfio-pci.ko.zst\n";
  return s + extra + "usr/bin/udevadm\n";
}

// The regeneration: the first command a set runs.
Argv backend_argv(const FakeRunner& r) {
  return r.calls.at(0).argv;
}

// Answers as a FakeRunner with good listings, except that call n fails (exit 1) or finds its
// program missing.
class FailAt : public CommandRunner {
 public:
  FailAt(int n, bool missing, const std::string& lister) : n_(n), missing_(missing) {
    inner_.on_program(lister, FakeRunner::success(listing("6.1.0-28-amd64")));
  }
  Result<CommandResult> run(const Invocation& cmd) override {
    if (++count_ != n_) return inner_.run(cmd);
    if (missing_) return Error::not_found(cmd.argv[0] + ": program not found in PATH", "");
    return FakeRunner::failure(1, "E: boom\n");
  }

 private:
  int n_, count_ = 0;
  bool missing_;
  FakeRunner inner_;
};

struct Case {
  std::string fixture, lister, regen0;
  std::vector<std::string> images;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.fixture;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"debian-initramfs-tools",
       "lsinitramfs",
       "update-initramfs",
       {"/boot/initrd.img-6.1.0-27-amd64", "/boot/initrd.img-6.1.0-28-amd64"}},
      {"debian-initramfs-tools-awkward",
       "lsinitramfs",
       "update-initramfs",
       {"/boot/initrd.img-6.1.0-27-amd64", "/boot/initrd.img-6.1.0-28-amd64"}},
      {"fedora-dracut", "lsinitrd", "dracut", {"/boot/initramfs-6.5.6-300.fc39.x86_64.img"}},
      {"arch-mkinitcpio",
       "lsinitcpio",
       "mkinitcpio",
       {"/boot/initramfs-linux-fallback.img", "/boot/initramfs-linux.img"}},
      {"arch-mkinitcpio-dropins",
       "lsinitcpio",
       "mkinitcpio",
       {"/boot/initramfs-linux-fallback.img", "/boot/initramfs-linux.img"}},
      {"arch-mkinitcpio-awkward",
       "lsinitcpio",
       "mkinitcpio",
       {"/boot/initramfs-linux-fallback.img", "/boot/initramfs-linux.img"}},
  };
  return all;
}

class Initramfs : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    load(t, GetParam().fixture);
    runner.on_program(GetParam().lister, FakeRunner::success(listing("6.1.0-28-amd64")));
    env.runner = &runner;
  }
  CliRun cli(HostFs& f, std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    cli::Injected i;
    i.fs = &f;
    i.env = env;
    i.process = process_at(kNow);
    return run_cli(args, &i);
  }
  Result<setup::SetupReport> setup(HostFs& f, CommandRunner& r, bool dry = false) {
    setup::Request req;
    req.vfio = true;
    return setup::run_setup(f, req, nullptr, {nullptr, &r, nullptr, nullptr},
                            {"setup --vfio", kNow, dry});
  }
  TempTree t;
  FakeRunner runner;
  assign::Environment env;
};

// The dry run's diffs and commands, as goldens (PCIPASS_UPDATE_GOLDEN=1 rewrites them).
TEST_P(Initramfs, DryRunDiffsMatchTheGolden) {
  std::string before = files_state(t);
  FaultFs f(t);
  auto r = cli(f, {"setup", "--vfio", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(files_state(t), before);
  EXPECT_TRUE(runner.calls.empty());  // a dry run runs nothing
  std::string file = source_path("tests/golden/initramfs/" + GetParam().fixture);
  if (std::getenv("PCIPASS_UPDATE_GOLDEN")) std::ofstream(file, std::ios::binary) << r.out;
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(in) << file << " is missing: run with PCIPASS_UPDATE_GOLDEN=1";
  EXPECT_EQ(r.out, std::string(std::istreambuf_iterator<char>(in), {}));
}

// The real run: the regeneration, then every image listed and checked; a second run changes
// nothing and runs nothing; undo restores every file and regenerates again.
TEST_P(Initramfs, RegeneratesChecksEveryImageAndUndoes) {
  std::string before = files_state(t);
  FaultFs f(t);
  auto r = setup(f, runner);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->initramfs.has_value());
  EXPECT_TRUE(r->initramfs->changed);
  std::vector<Argv> want = {
      Argv(r->initramfs->backend->regenerate.begin(), r->initramfs->backend->regenerate.end())};
  EXPECT_EQ(want[0][0], GetParam().regen0);
  for (const auto& image : GetParam().images) want.push_back({GetParam().lister, image});
  EXPECT_EQ(runner.argvs(), want);
  for (const auto& c : runner.calls)
    EXPECT_EQ(c.environment.at("PATH"), "/usr/sbin:/usr/bin:/sbin:/bin");

  runner.calls.clear();
  auto again = setup(f, runner);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->applied.changed);
  EXPECT_TRUE(runner.calls.empty());

  auto u = change::undo_change_set(f, std::nullopt, {nullptr, &runner, nullptr, nullptr}, false);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(files_state(t), before);
  EXPECT_EQ(runner.argvs(), std::vector<Argv>{want[0]});
}

// The safety rule: an image regenerated without vfio-pci fails the set; every file goes back
// and the images are regenerated from the restored files.
TEST_P(Initramfs, AnImageWithoutVfioPciRollsEverythingBack) {
  std::string before = files_state(t);
  FakeRunner dropped;
  dropped.on_program(GetParam().lister, FakeRunner::success(listing("6.1.0-28-amd64", false)));
  FaultFs f(t);
  auto r = setup(f, dropped);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("lacks vfio-pci.ko"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(GetParam().images.front()), std::string::npos);
  EXPECT_EQ(files_state(t), before);
  const auto& regen = backend_argv(dropped);
  EXPECT_EQ(dropped.argvs(),
            (std::vector<Argv>{regen, {GetParam().lister, GetParam().images.front()}, regen}));
  auto sets = change::list_change_sets(f);
  ASSERT_TRUE(sets.ok());
  ASSERT_EQ(sets->size(), 1u);
  EXPECT_EQ(sets->back().state, change::SetState::kRolledBack);
}

// An image whose listing lacks vfio-pci passes when the kernel has it built in. With the kernel's
// modules.builtin unreadable, that is unknown: it said "lacks vfio-pci.ko", a guess that rolled
// back a good setup and sent the user looking for a missing module.
TEST(InitramfsVerify, AnUnreadableBuiltinListIsNotALackingModule) {
  TempTree t;
  t.file("/boot/initrd.img-6.1.0-28-amd64", "image");
  t.file("/lib/modules/6.1.0-28-amd64/modules.builtin", "kernel/drivers/vfio/pci/vfio-pci.ko\n");
  FakeRunner runner;
  runner.on_program("lsinitramfs", FakeRunner::success(listing("6.1.0-28-amd64", false)));
  const auto& b = initramfs::backend(initramfs::System::kInitramfsTools);
  const initramfs::Image image{"6.1.0-28-amd64", "/boot/initrd.img-6.1.0-28-amd64"};
  const initramfs::Wants wants{{"vfio_pci"}, {}};
  auto fs = make_real_host_fs(t.root());
  EXPECT_TRUE(initramfs::verify_image(*fs, &runner, b, image, wants).ok());
  DenyFs deny(t, {"/lib/modules/6.1.0-28-amd64/modules.builtin"});
  auto r = initramfs::verify_image(deny, &runner, b, image, wants);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "cannot tell whether /boot/initrd.img-6.1.0-28-amd64 lacks vfio-pci.ko: `lsinitramfs "
            "/boot/initrd.img-6.1.0-28-amd64` does not list it, and whether the kernel has it "
            "built in is unknown: open /lib/modules/6.1.0-28-amd64/modules.builtin: Permission "
            "denied");
  t.remove("/lib/modules/6.1.0-28-amd64/modules.builtin");  // no list: nothing is built in
  r = initramfs::verify_image(*fs, &runner, b, image, wants);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("lacks vfio-pci.ko"), std::string::npos) << r.error().message;
}

// The kernels or images cannot be listed: not "no image to check", which would let the
// regeneration go unverified. Nothing is written and nothing runs.
TEST_P(Initramfs, ImagesThatCannotBeListedStopSetupBeforeAnyChange) {
  std::string dir = GetParam().lister == "lsinitcpio" ? "/boot" : "/lib/modules";
  std::string before = files_state(t);
  test::DenyFs deny(t, {dir});
  auto r = setup(deny, runner);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "opendir " + dir + ": Permission denied");
  EXPECT_EQ(files_state(t), before);
  EXPECT_TRUE(runner.calls.empty());
}

// A fault at every file change, then at every command: each leaves every file as it was.
TEST_P(Initramfs, AFaultAtEveryWriteAndEveryCommandLeavesEveryFileAsItWas) {
  std::string before = files_state(t);
  int writes, commands;
  {
    TempTree probe;
    load(probe, GetParam().fixture);
    FaultFs f(probe);
    FakeRunner r;
    r.on_program(GetParam().lister, FakeRunner::success(listing("6.1.0-28-amd64")));
    ASSERT_TRUE(setup(f, r).ok());
    writes = f.changes();
    commands = static_cast<int>(r.calls.size());
  }
  ASSERT_GE(writes, 4);
  for (int n = 1; n <= writes; ++n) {
    SCOPED_TRACE("write " + std::to_string(n));
    FaultFs f(t);
    f.fail_at(n);
    FakeRunner r;
    r.on_program(GetParam().lister, FakeRunner::success(listing("6.1.0-28-amd64")));
    ASSERT_FALSE(setup(f, r).ok());
    EXPECT_EQ(files_state(t), before);
  }
  for (int n = 1; n <= commands; ++n) {
    for (bool missing : {false, true}) {
      SCOPED_TRACE("command " + std::to_string(n) + (missing ? " not installed" : " fails"));
      FaultFs f(t);
      FailAt r(n, missing, GetParam().lister);
      ASSERT_FALSE(setup(f, r).ok());
      EXPECT_EQ(files_state(t), before);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Systems, Initramfs, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.fixture;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

}  // namespace
}  // namespace pcipass::test
