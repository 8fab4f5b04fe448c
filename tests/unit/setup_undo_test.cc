// setup --vfio and undo as durable change sets: byte-exact undo after a reboot (mode, owner and
// an extended attribute too), refusal of an edited file, a fault at every change and a crash
// after every change leaving the files as they were.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "assign/assign.h"
#include "change/store.h"
#include "cli_harness.h"
#include "fault_fs.h"
#include "setup/vfio.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;

const std::string kConf = "/etc/modules-load.d/pcipass.conf";
constexpr int64_t kNow = 1795000000;  // 2026-11-18 11:06:40 UTC

// Every file under the tree but pcipass's own records: path, bytes, mode, owner, xattrs.
std::string files_state(const TempTree& t) {
  std::string out;
  for (const auto& e : fs::recursive_directory_iterator(t.root())) {
    std::string rel = e.path().string().substr(t.root().size());
    if (rel.starts_with("/var") || rel.starts_with("/run")) continue;  // pcipass's own records
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    out += fmt::format("{} {:o} {}:{}", rel, st.st_mode, st.st_uid, st.st_gid);
    char names[1024];
    ssize_t n = ::llistxattr(e.path().c_str(), names, sizeof names);
    for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(strlen(names + i)) + 1) {
      char value[256];
      ssize_t v = ::lgetxattr(e.path().c_str(), names + i, value, sizeof value);
      out += fmt::format(" {}={}", names + i, std::string(value, v > 0 ? v : 0));
    }
    if (e.is_regular_file()) out += " [" + t.read(rel) + "]";
    out += '\n';
  }
  return out;
}

bool stray_temporaries(const TempTree& t) {
  for (const auto& e : fs::recursive_directory_iterator(t.root()))
    if (e.path().filename().string().starts_with(".pcipass-")) return true;
  return false;
}

class SetupUndo : public ::testing::Test {
 protected:
  void SetUp() override {
    t.file("/proc/sys/kernel/osrelease", "6.1.0-28-amd64\n");
    t.dir("/etc/modules-load.d");
  }
  cli::Injected injected(HostFs& f) {
    cli::Injected i;
    i.fs = &f;
    i.env = env;
    i.process = process_at(kNow);
    return i;
  }
  CliRun cli(HostFs& f, std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    auto inj = injected(f);
    return run_cli(args, &inj);
  }
  Result<setup::VfioReport> setup(HostFs& f, bool dry = false) {
    return setup::setup_vfio(f, {}, {"setup --vfio", kNow, dry});
  }
  // A pre-existing file with its own line, mode, owner and a user xattr.
  void existing_conf() {
    t.file(kConf, "# mine\nkvm\nvfio-pci");
    ::chmod(t.real(kConf).c_str(), 0640);
    ASSERT_EQ(::chown(t.real(kConf).c_str(), 1234, 5678), 0);
    ASSERT_EQ(::setxattr(t.real(kConf).c_str(), "user.origin", "admin", 5, 0), 0);
  }

  TempTree t;
  assign::Environment env;
};

TEST_F(SetupUndo, CreatesTheFileOnceAndSaysHowToUndo) {
  FaultFs f(t);
  auto r = cli(f, {"setup", "--vfio"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "change set 20261118-110640: created /etc/modules-load.d/pcipass.conf (vfio, "
            "vfio_iommu_type1, vfio_pci, vfio_virqfd now load at boot)\n"
            "undo with `pcipass undo 20261118-110640`\n");
  EXPECT_EQ(t.read(kConf),
            "# VFIO for PCI passthrough, written by `pcipass setup --vfio`;\n"
            "# `pcipass undo` removes it.\nvfio\nvfio_iommu_type1\nvfio_pci\nvfio_virqfd\n");
  int changes = f.changes();
  r = cli(f, {"setup", "--vfio"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out,
            "nothing to change: /etc/modules-load.d/pcipass.conf already loads vfio, "
            "vfio_iommu_type1, vfio_pci, vfio_virqfd at boot\n");
  EXPECT_EQ(f.changes(), changes + 1);  // the lock directory only
}

TEST_F(SetupUndo, NewKernelsHaveNoSeparateVirqfd) {
  t.file("/proc/sys/kernel/osrelease", "6.2.0\n");
  FaultFs f(t);
  EXPECT_EQ(*setup::vfio_modules(f),
            (std::vector<std::string>{"vfio", "vfio_iommu_type1", "vfio_pci"}));
  t.file("/proc/sys/kernel/osrelease", "5.15.0-91-generic\n");
  EXPECT_EQ(setup::vfio_modules(f)->size(), 4u);
}

TEST_F(SetupUndo, DryRunShowsTheDiffAndWritesNothing) {
  existing_conf();
  std::string before = files_state(t);
  FaultFs f(t);
  auto r = cli(f, {"setup", "--vfio", "--dry-run"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "dry run: pcipass would make these changes, in order:\n"
            "  change set 20261118-110640 (applying)\n"
            "  replace /etc/modules-load.d/pcipass.conf\n"
            "    --- a/etc/modules-load.d/pcipass.conf\n"
            "    +++ b/etc/modules-load.d/pcipass.conf\n"
            "    @@ -1,3 +1,6 @@\n"
            "     # mine\n"
            "     kvm\n"
            "    -vfio-pci\n"
            "    \\ No newline at end of file\n"
            "    +vfio-pci\n"
            "    +vfio\n"
            "    +vfio_iommu_type1\n"
            "    +vfio_virqfd\n"
            "  change set 20261118-110640 (applied)\n"
            "nothing was changed\n");
  EXPECT_EQ(f.changes(), 0);
  EXPECT_EQ(files_state(t), before);
}

TEST_F(SetupUndo, UndoAfterARebootRestoresBytesModeOwnerAndXattrs) {
  existing_conf();
  std::string before = files_state(t);
  std::string id;
  {
    FaultFs f(t);
    auto r = setup(f);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(r->applied.id.has_value());
    id = *r->applied.id;
    EXPECT_EQ(t.read(kConf), "# mine\nkvm\nvfio-pci\nvfio\nvfio_iommu_type1\nvfio_virqfd\n");
  }
  // Kept across the replace: the file's own metadata.
  struct stat st {};
  ::stat(t.real(kConf).c_str(), &st);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  // Someone changes the metadata (not the bytes), then the machine reboots: /run is empty.
  ::chmod(t.real(kConf).c_str(), 0600);
  ASSERT_EQ(::chown(t.real(kConf).c_str(), 0, 0), 0);
  fs::remove_all(t.real("/run"));
  FaultFs f(t);
  auto list = cli(f, {"--json", "undo", "--list"});
  auto j = nlohmann::json::parse(list.out);
  ASSERT_EQ(j["change_sets"].size(), 1u);
  EXPECT_EQ(j["change_sets"][0]["id"], id);
  EXPECT_EQ(j["change_sets"][0]["state"], "applied");
  EXPECT_EQ(j["change_sets"][0]["command"], "setup --vfio");
  EXPECT_EQ(j["change_sets"][0]["files"][0], kConf);
  auto r = cli(f, {"undo"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "restored " + kConf + "\nundid change set " + id + " (setup --vfio)\n");
  EXPECT_EQ(files_state(t), before);
  EXPECT_FALSE(stray_temporaries(t));
  r = cli(f, {"undo", id});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: change set " + id + " is undone, not applied");
}

TEST_F(SetupUndo, UndoOfACreatedFileRemovesIt) {
  std::string before = files_state(t);
  FaultFs f(t);
  ASSERT_TRUE(setup(f).ok());
  auto r = cli(f, {"--json", "undo"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.undo/1");
  EXPECT_EQ(j["files"][0]["action"], "removed");
  EXPECT_EQ(files_state(t), before);
}

TEST_F(SetupUndo, UndoRefusesAFileEditedSinceAndShowsTheDiff) {
  FaultFs f(t);
  auto s = setup(f);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->applied.id.has_value());
  std::string edited = t.read(kConf) + "kvm_intel\n";
  t.file(kConf, edited);
  std::string before = files_state(t);
  int changes = f.changes();
  auto r = cli(f, {"undo", *s->applied.id});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out,
            "--- a/etc/modules-load.d/pcipass.conf\n+++ b/etc/modules-load.d/pcipass.conf\n"
            "@@ -4,3 +4,4 @@\n vfio_iommu_type1\n vfio_pci\n vfio_virqfd\n+kvm_intel\n");
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "error: refusing to undo change set " + *s->applied.id +
                ": /etc/modules-load.d/pcipass.conf changed since pcipass wrote it (the diff "
                "above shows how); nothing was written");
  EXPECT_EQ(files_state(t), before);
  EXPECT_EQ(f.changes(), changes + 1);  // the lock directory only
}

// The heart of it: fail each change setup makes, then each change undo makes.
TEST_F(SetupUndo, AFaultAtEveryChangeLeavesEveryFileAsItWas) {
  existing_conf();
  int setup_changes, undo_changes;
  {
    TempTree probe;  // a clean run counts the changes
    probe.file("/proc/sys/kernel/osrelease", "6.1.0\n");
    probe.file(kConf, "kvm\n");
    FaultFs f(probe);
    ASSERT_TRUE(setup(f).ok());
    setup_changes = f.changes();
    ASSERT_TRUE(change::undo_change_set(f, std::nullopt, {}, false).ok());
    undo_changes = f.changes() - setup_changes;
  }
  ASSERT_GE(setup_changes, 5);
  ASSERT_GE(undo_changes, 3);
  std::string before = files_state(t);
  for (int n = 1; n <= setup_changes; ++n) {
    SCOPED_TRACE("setup, change " + std::to_string(n));
    FaultFs f(t);
    f.fail_at(n);
    auto r = setup(f);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(files_state(t), before);
    EXPECT_FALSE(stray_temporaries(t));
    // No set is left applied: undo has nothing to do.
    FaultFs clean(t);
    auto u = change::undo_change_set(clean, std::nullopt, {}, false);
    EXPECT_FALSE(u.ok());
  }
  FaultFs f(t);
  auto s = setup(f);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->applied.id.has_value());
  std::string applied = files_state(t);
  for (int n = 1; n <= undo_changes; ++n) {
    SCOPED_TRACE("undo, change " + std::to_string(n));
    FaultFs g(t);
    g.fail_at(n);
    auto u = change::undo_change_set(g, *s->applied.id, {}, false);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(files_state(t), applied);
    EXPECT_FALSE(stray_temporaries(t));
    auto sets = change::list_change_sets(g);
    ASSERT_TRUE(sets.ok());
    ASSERT_FALSE(sets->empty());
    EXPECT_EQ(sets->back().state, change::SetState::kApplied);
  }
}

TEST_F(SetupUndo, RecoverAfterACrashAtEveryChange) {
  existing_conf();
  std::string before = files_state(t);
  for (int n = 1;; ++n) {
    SCOPED_TRACE("setup, crash after change " + std::to_string(n));
    {
      FaultFs f(t);
      f.crash_after(n);
      if (setup(f).ok()) break;  // n reached the end: nothing was interrupted
    }
    fs::remove_all(t.real("/run"));  // the reboot
    FaultFs f(t);
    auto pending = change::list_change_sets(f);
    ASSERT_TRUE(pending.ok());
    // A kill inside replace_file_at's window would leave its temporary: recover removes it.
    if (!pending->empty() && pending->back().state == change::SetState::kApplying)
      t.file("/etc/modules-load.d/.pcipass-Kx91Qz", "half");
    auto r = assign::recover(f, env);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(files_state(t), before);
    EXPECT_FALSE(stray_temporaries(t));
    auto sets = change::list_change_sets(f);
    ASSERT_TRUE(sets.ok());
    for (const auto& s : *sets) EXPECT_NE(s.state, change::SetState::kApplied) << s.id;
  }
}

TEST_F(SetupUndo, RecoverAfterACrashAtEveryChangeOfUndoFinishesIt) {
  existing_conf();
  std::string before = files_state(t);
  for (int n = 1;; ++n) {
    SCOPED_TRACE("undo, crash after change " + std::to_string(n));
    TempTree tree;  // a fresh host each time: setup, then an undo that dies
    tree.file("/proc/sys/kernel/osrelease", "6.1.0\n");
    tree.file(kConf, "# mine\nkvm\nvfio-pci");
    std::string original = files_state(tree);
    FaultFs f(tree);
    auto s = setup(f);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->applied.id.has_value());
    std::string applied = files_state(tree);
    {
      FaultFs g(tree);
      g.crash_after(n);
      if (change::undo_change_set(g, *s->applied.id, {}, false).ok()) break;
    }
    FaultFs g(tree);
    auto r = assign::recover(g, env);
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto sets = change::list_change_sets(g);
    ASSERT_TRUE(sets.ok());
    ASSERT_FALSE(sets->empty());
    EXPECT_FALSE(stray_temporaries(tree));
    // Before the set was marked undoing nothing was written: it stays applied. After, recover
    // finishes the undo.
    if (sets->back().state == change::SetState::kApplied) {
      EXPECT_EQ(files_state(tree), applied);
    } else {
      EXPECT_EQ(sets->back().state, change::SetState::kUndone);
      EXPECT_EQ(files_state(tree), original);
    }
  }
}

}  // namespace
}  // namespace pcipass::test
