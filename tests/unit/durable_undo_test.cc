// Durable change sets beyond one file: directories they create are removed by undo (rmdir only,
// refused when something else was put in them), program runs are recorded (argv, exit status,
// time) and shown by `undo --list` and `undo --dry-run`, and a file removed then recreated, by
// undo or by a rollback, gets back its mode, owner and extended attributes.
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
#include "fake_runner.h"
#include "fault_fs.h"
#include "setup/vfio.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;
using change::Change;

constexpr int64_t kNow = 1795000000;  // 2026-11-18 11:06:40 UTC
const std::string kDir = "/etc/modules-load.d";
const std::string kConf = "/etc/modules-load.d/pcipass.conf";

// Every entry under the tree but pcipass's own records: path, mode, owner, xattrs, bytes.
std::string files_state(const TempTree& t) {
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(t.root())) {
    std::string rel = e.path().string().substr(t.root().size());
    if (rel.starts_with("/var") || rel.starts_with("/run")) continue;
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    std::string line = fmt::format("{} {:o} {}:{}", rel, st.st_mode, st.st_uid, st.st_gid);
    char names[1024];
    ssize_t n = ::llistxattr(e.path().c_str(), names, sizeof names);
    for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(strlen(names + i)) + 1) {
      char value[256];
      ssize_t v = ::lgetxattr(e.path().c_str(), names + i, value, sizeof value);
      line += fmt::format(" {}={}", names + i, std::string(value, v > 0 ? v : 0));
    }
    if (e.is_regular_file()) line += " [" + t.read(rel) + "]";
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return fmt::format("{}\n", fmt::join(lines, "\n"));
}

Invocation argv(std::vector<std::string> a) {
  Invocation i;
  i.argv = std::move(a);
  return i;
}

class Durable : public ::testing::Test {
 protected:
  void SetUp() override { t.file("/proc/sys/kernel/osrelease", "6.1.0-28-amd64\n"); }
  change::Ports ports() {
    return {nullptr, &runner, nullptr, [] { return kNow + 5; }};
  }
  Result<change::Applied> apply(HostFs& f, std::vector<Change> plan, bool dry = false) {
    return change::apply_durable(f, plan, ports(), {"test", kNow, dry});
  }
  CliRun cli(HostFs& f, std::vector<std::string> args) {
    cli::Injected i;
    i.fs = &f;
    i.env.runner = &runner;
    i.process = process_at(kNow);
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, &i);
  }
  // A file with its own mode, owner and a user xattr.
  void owned(const std::string& path, const std::string& bytes) {
    t.file(path, bytes);
    ::chmod(t.real(path).c_str(), 0640);
    ASSERT_EQ(::chown(t.real(path).c_str(), 1234, 5678), 0);
    ASSERT_EQ(::setxattr(t.real(path).c_str(), "user.origin", "admin", 5, 0), 0);
  }
  TempTree t;
  FakeRunner runner;
};

// --- directories

TEST_F(Durable, RemoveDirIsRmdirOnly) {
  t.dir("/etc/empty");
  t.file("/etc/full/keep", "x");
  auto real = make_real_host_fs(t.root());
  EXPECT_TRUE(real->remove_dir("/etc/empty").ok());
  EXPECT_FALSE(fs::exists(t.real("/etc/empty")));
  EXPECT_TRUE(real->remove_dir("/etc/empty").ok());  // absent: nothing to do
  auto full = real->remove_dir("/etc/full");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message,
            "/etc/full is not empty: pcipass removes only directories it created, once empty");
  EXPECT_FALSE(full.error().fix.empty());
  EXPECT_EQ(t.read("/etc/full/keep"), "x");
  EXPECT_FALSE(real->remove_dir("/etc/full/keep").ok());  // a file is not a directory
  EXPECT_TRUE(fs::exists(t.real("/etc/full/keep")));
}

TEST_F(Durable, UndoRemovesTheDirectoriesTheSetCreated) {
  t.dir("/etc");
  std::string before = files_state(t);
  FaultFs f(t);
  auto r = cli(f, {"setup", "--vfio"});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(fs::is_directory(t.real(kDir)));
  auto list = nlohmann::json::parse(cli(f, {"--json", "undo", "--list"}).out);
  EXPECT_EQ(list["change_sets"][0]["dirs"], nlohmann::json({kDir}));
  auto u = cli(f, {"undo"});
  ASSERT_EQ(u.status, 0) << u.err;
  EXPECT_EQ(u.out, "removed " + kConf + "\nremoved directory " + kDir +
                       "\nundid change set 20261118-110640 (setup --vfio)\n");
  EXPECT_FALSE(fs::exists(t.real(kDir)));
  EXPECT_EQ(files_state(t), before);
}

// A directory the set made that cannot be listed may hold something else: undo stops before
// any change (else it would remove the set's files, then fail to remove the directory).
TEST_F(Durable, UndoStopsWhenItsDirectoryCannotBeListed) {
  t.dir("/etc");
  FaultFs f(t);
  ASSERT_EQ(cli(f, {"setup", "--vfio"}).status, 0);
  std::string before = files_state(t);
  int changes = f.changes();
  f.deny_listing(kDir);
  auto u = cli(f, {"undo"});
  EXPECT_EQ(u.status, 1);
  EXPECT_EQ(u.err, "error: cannot tell what " + kDir + " holds now: opendir " + kDir +
                       ": Permission denied\n  fix: run pcipass as root, then undo again\n");
  EXPECT_EQ(files_state(t), before);
  EXPECT_EQ(f.changes(), changes + 1);  // the lock directory only
}

TEST_F(Durable, UndoRefusesWhenItsDirectoryHoldsSomethingElse) {
  t.dir("/etc");
  FaultFs f(t);
  ASSERT_EQ(cli(f, {"setup", "--vfio"}).status, 0);
  t.file(kDir + "/kvm.conf", "kvm\n");
  std::string before = files_state(t);
  int changes = f.changes();
  auto u = cli(f, {"undo"});
  EXPECT_EQ(u.status, 1);
  EXPECT_EQ(u.err,
            "error: refusing to undo change set 20261118-110640: " + kDir +
                " was created by this change set and now also holds kvm.conf; nothing was "
                "written\n  fix: move what was put there since elsewhere, then undo again\n");
  EXPECT_EQ(files_state(t), before);
  EXPECT_EQ(f.changes(), changes + 1);  // the lock directory only
  auto j = nlohmann::json::parse(cli(f, {"--json", "undo"}).out);
  EXPECT_EQ(j["refused"], true);
  EXPECT_EQ(j["conflicts"][0]["path"], kDir);
  EXPECT_NE(j["conflicts"][0]["reason"].get<std::string>().find("kvm.conf"), std::string::npos);
}

// Nested directories: all of them are created, and a fault or a crash at any change leaves none.
TEST_F(Durable, AFaultOrACrashAtEveryChangeLeavesNoDirectory) {
  t.dir("/etc");
  std::string before = files_state(t);
  auto plan = [] {
    return std::vector<Change>{Change::dir_create("/etc/pcipass/a/b", 0750),
                               Change::file_write("/etc/pcipass/a/b/c.conf", "c\n")};
  };
  int total;
  {
    TempTree probe;
    probe.dir("/etc");
    FaultFs f(probe);
    auto p = plan();
    ASSERT_TRUE(change::apply_durable(f, p, ports(), {"test", kNow, false}).ok());
    EXPECT_TRUE(fs::is_directory(probe.real("/etc/pcipass/a/b")));
    total = f.changes();
    // Undo takes all three away, innermost first.
    ASSERT_TRUE(change::undo_change_set(f, std::nullopt, ports(), false).ok());
    EXPECT_FALSE(fs::exists(probe.real("/etc/pcipass")));
  }
  for (int n = 1; n <= total; ++n) {
    SCOPED_TRACE("fault at change " + std::to_string(n));
    FaultFs f(t);
    f.fail_at(n);
    EXPECT_FALSE(apply(f, plan()).ok());
    EXPECT_EQ(files_state(t), before);
  }
  for (int n = 1; n < total; ++n) {
    SCOPED_TRACE("crash after change " + std::to_string(n));
    {
      FaultFs f(t);
      f.crash_after(n);
      EXPECT_FALSE(apply(f, plan()).ok());
    }
    fs::remove_all(t.real("/run"));
    FaultFs f(t);
    assign::Environment env;
    auto r = assign::recover(f, env);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(files_state(t), before);
  }
}

// --- programs

TEST_F(Durable, ProgramRunsAreRecordedAndShown) {
  t.file("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n");
  FaultFs f(t);
  auto r = apply(f, {Change::file_write("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"iommu=pt\"\n"),
                     Change::program_run(argv({"update-grub"}), argv({"update-grub"}))});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->id.has_value());
  auto manifest =
      nlohmann::json::parse(t.read("/var/lib/pcipass/changes/" + *r->id + "/manifest.json"));
  EXPECT_EQ(manifest["programs"],
            nlohmann::json::parse(R"([{"argv": ["update-grub"], "undo_argv": ["update-grub"],
              "ran": {"exit_status": 0, "signal": 0, "timed_out": false, "time": 1795000005}}])"));
  auto list = cli(f, {"--json", "undo", "--list"});
  auto j = nlohmann::json::parse(list.out);
  EXPECT_EQ(j["change_sets"][0]["programs"], manifest["programs"]);
  auto text = cli(f, {"undo", "--list"});
  EXPECT_NE(text.out.find("update-grub (exit 0, 2026-11-18 11:06:45)"), std::string::npos)
      << text.out;
  auto dry = cli(f, {"undo", "--dry-run"});
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("change set " + *r->id + " ran update-grub (exit 0, 2026-11-18 11:06:45)"),
            std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("  run update-grub\n"), std::string::npos) << dry.out;
  auto dj = nlohmann::json::parse(cli(f, {"--json", "undo", "--dry-run"}).out);
  EXPECT_EQ(dj["programs"], manifest["programs"]);
  EXPECT_EQ(runner.calls.size(), 1u);  // the dry runs ran nothing
  auto u = cli(f, {"undo"});
  ASSERT_EQ(u.status, 0) << u.err;
  EXPECT_EQ(t.read("/etc/default/grub"), "GRUB_CMDLINE_LINUX=\"\"\n");
  EXPECT_EQ(runner.argvs(), (std::vector<FakeRunner::Argv>{{"update-grub"}, {"update-grub"}}));
}

TEST_F(Durable, AFailedProgramIsRecordedWithItsStatusAndRolledBack) {
  t.file("/etc/default/grub", "old\n");
  std::string before = files_state(t);
  runner.on({"update-grub"}, FakeRunner::failure(2, "syntax error\n"));
  FaultFs f(t);
  auto r = apply(f, {Change::file_write("/etc/default/grub", "new\n"),
                     Change::program_run(argv({"update-grub"}))});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(files_state(t), before);
  auto sets = change::list_change_sets(f);
  ASSERT_TRUE(sets.ok());
  ASSERT_EQ(sets->size(), 1u);
  EXPECT_EQ(sets->at(0).state, change::SetState::kRolledBack);
  ASSERT_TRUE(sets->at(0).programs.at(0).ran.has_value());
  EXPECT_EQ(sets->at(0).programs[0].ran->exit_status, 2);
  EXPECT_EQ(sets->at(0).programs[0].ran->time, kNow + 5);
}

TEST(Manifest, ProgramsAndXattrsAreValidated) {
  const std::string sha(64, 'a');
  const std::string valid = R"({"schema": "pcipass.changes/1", "id": "20261122-043512",
    "command": "x", "time": 1, "state": "applied",
    "files": [{"path": "/etc/a", "before": {"absent": false, "sha256": ")" +
                            sha + R"(", "mode": 420, "uid": 0, "gid": 0,
               "xattrs": {"user.origin": "61646d696e"}},
               "after": {"absent": true}}],
    "dirs": [{"path": "/etc/d", "mode": 493}],
    "programs": [{"argv": ["update-grub"], "undo_argv": null,
                  "ran": {"exit_status": 0, "signal": 0, "timed_out": false, "time": 5}}]})";
  auto ok = change::parse_manifest(valid, "m");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->files[0].before.xattrs->at("user.origin"), "admin");
  EXPECT_EQ(ok->programs[0].ran->time, 5);
  auto damage = [&](const std::string& what, const std::string& with) {
    std::string s = valid;
    auto at = s.find(what);
    EXPECT_NE(at, std::string::npos) << what;
    return s.replace(at, what.size(), with);
  };
  for (auto [what, with] : std::vector<std::pair<std::string, std::string>>{
           {"\"user.origin\"", "\"origin\""},
           {"\"user.origin\"", "\"user.\""},
           {"61646d696e", "zz"},
           {"61646d696e", "616"},
           {"/etc/d", "/etc/../d"},
           {"/etc/d", "/tmp/d"},
           {"\"mode\": 493", "\"mode\": 99999"},
           {"[\"update-grub\"]", "[]"},
           {"[\"update-grub\"]", "[\"\"]"},
           {"[\"update-grub\"]", "[1]"},
           {"[\"update-grub\"]", "[\"../bin/update-grub\"]"},
           {"[\"update-grub\"]", "[\"/usr/../tmp/x\"]"},
           {"[\"update-grub\"]", "\"update-grub\""},
           {"\"undo_argv\": null,", ""},
           {"\"exit_status\": 0", "\"exit_status\": 256"},
           {"\"signal\": 0", "\"signal\": -1"},
           {"\"time\": 5", "\"time\": 5.5"}}) {
    auto r = change::parse_manifest(damage(what, with), "m");
    EXPECT_FALSE(r.ok()) << what << " -> " << with;
  }
}

// --- guarded files

// A program rewrites a guarded file: the manifest keeps its before-copy from the start and its
// after-copy once the program ran; undo puts the bytes back and runs nothing.
TEST_F(Durable, AGuardedFileIsRecordedBeforeAndAfterItsProgram) {
  t.file("/boot/loader/entries/a.conf", "options  quiet\n");
  std::string before = files_state(t);
  runner.observe = [&](const Invocation&) {
    EXPECT_TRUE(fs::exists(t.real("/var/lib/pcipass/changes/20261118-110640/before-0")));
    t.file("/boot/loader/entries/a.conf", "options quiet iommu=pt\n");
  };
  FaultFs f(t);
  auto r = apply(f, {Change::file_guard("/boot/loader/entries/a.conf"),
                     Change::file_guard("/boot/loader/entries/b.conf"),
                     Change::program_run(argv({"grubby", "--args=iommu=pt"}))});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->changed);
  std::string dir = "/var/lib/pcipass/changes/" + *r->id;
  auto m = nlohmann::json::parse(t.read(dir + "/manifest.json"));
  EXPECT_EQ(m["files"][0]["guard"], true);
  EXPECT_EQ(m["files"][0]["after"]["backup"], "after-0");
  EXPECT_EQ(t.read(dir + "/after-0"), "options quiet iommu=pt\n");
  EXPECT_EQ(m["files"][1]["after"], nlohmann::json::parse(R"({"absent": true})"));
  runner.observe = nullptr;
  auto u = change::undo_change_set(f, std::nullopt, ports(), false);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(files_state(t), before);
  EXPECT_EQ(runner.calls.size(), 1u);
  auto list = nlohmann::json::parse(cli(f, {"--json", "undo", "--list"}).out);
  EXPECT_EQ(list["change_sets"][0]["files"], nlohmann::json::array({"/boot/loader/entries/a.conf"}))
      << "b.conf, which the program left absent, is no change of the set's";
}

TEST(Manifest, GuardedFilesAreValidated) {
  const std::string sha(64, 'a');
  auto manifest = [&](const std::string& state, const std::string& file) {
    return R"({"schema": "pcipass.changes/1", "id": "20261122-043512", "command": "x",
      "time": 1, "state": ")" +
           state + R"(", "files": [)" + file + "]}";
  };
  const std::string known = R"({"path": "/boot/a.conf", "guard": true, "before": {"absent": false,
    "sha256": ")" + sha + R"(", "mode": 420, "uid": 0, "gid": 0}, "after": {"absent": true}})";
  const std::string pending = R"({"path": "/boot/a.conf", "guard": true, "before": {"absent":
    true}, "after": null})";
  auto ok = change::parse_manifest(manifest("applied", known), "m");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->files[0].guard);
  EXPECT_TRUE(ok->files[0].after_known);
  for (const char* state : {"applying", "rolled-back"}) {
    auto p = change::parse_manifest(manifest(state, pending), "m");
    ASSERT_TRUE(p.ok()) << state << ": " << p.error().message;
    EXPECT_FALSE(p->files[0].after_known);
  }
  for (const char* state : {"applied", "undoing", "undone"})
    EXPECT_FALSE(change::parse_manifest(manifest(state, pending), "m").ok()) << state;
  std::string not_guard = known;
  not_guard.replace(not_guard.find("\"guard\": true"), 13, "\"guard\": false");
  EXPECT_FALSE(change::parse_manifest(manifest("applied", not_guard), "m").ok());
  std::string unguarded_null = pending;
  unguarded_null.replace(unguarded_null.find("\"guard\": true, "), 15, "");
  EXPECT_FALSE(change::parse_manifest(manifest("applying", unguarded_null), "m").ok());
}

// --- metadata of recreated files

TEST_F(Durable, AFileRemovedAndRecreatedByUndoGetsItsMetadataBack) {
  owned("/etc/modprobe.d/blacklist-nouveau.conf", "blacklist nouveau\n");
  std::string before = files_state(t);
  FaultFs f(t);
  auto r = apply(f, {Change::file_remove("/etc/modprobe.d/blacklist-nouveau.conf")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(fs::exists(t.real("/etc/modprobe.d/blacklist-nouveau.conf")));
  fs::remove_all(t.real("/run"));  // a reboot
  auto u = change::undo_change_set(f, std::nullopt, ports(), false);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(files_state(t), before);
}

TEST_F(Durable, SecuritySelinuxIsKeptWhenTheFileSystemHasIt) {
  t.file("/etc/x.conf", "x\n");
  const char label[] = "system_u:object_r:etc_t:s0";
  if (::setxattr(t.real("/etc/x.conf").c_str(), "security.selinux", label, sizeof label, 0) != 0)
    GTEST_SKIP() << "no security.selinux here: " << strerror(errno);
  std::string before = files_state(t);
  FaultFs f(t);
  ASSERT_TRUE(apply(f, {Change::file_remove("/etc/x.conf")}).ok());
  ASSERT_TRUE(change::undo_change_set(f, std::nullopt, ports(), false).ok());
  EXPECT_EQ(files_state(t), before);
}

// Rollback's own metadata restore: a file given another mode and owner, and a file removed, are
// put back exactly, xattrs included, when a later change fails.
TEST_F(Durable, RollbackRestoresModeOwnerAndXattrs) {
  owned("/etc/a.conf", "a\n");
  owned("/etc/b.conf", "b\n");
  std::string before = files_state(t);
  auto plan = [] {
    Change a = Change::file_write("/etc/a.conf", "A\n", 0600);
    a.force_mode = true;
    a.uid = 0;
    a.gid = 0;
    a.xattrs = Xattrs{};
    return std::vector<Change>{a, Change::file_remove("/etc/b.conf"),
                               Change::file_write("/etc/c.conf", "c\n")};
  };
  int total;
  {
    TempTree probe;
    probe.file("/etc/a.conf", "a\n").file("/etc/b.conf", "b\n");
    FaultFs f(probe);
    auto p = plan();
    ASSERT_TRUE(change::apply_durable(f, p, ports(), {"test", kNow, false}).ok());
    total = f.changes();
    struct stat st {};
    ::stat(probe.real("/etc/a.conf").c_str(), &st);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
  // The last plan change (c.conf) and the commit: a and b are changed when they fail.
  for (int n = total - 1; n <= total; ++n) {
    SCOPED_TRACE("fault at change " + std::to_string(n));
    FaultFs f(t);
    f.fail_at(n);
    EXPECT_FALSE(apply(f, plan()).ok());
    EXPECT_EQ(files_state(t), before);
  }
}

}  // namespace
}  // namespace pcipass::test
