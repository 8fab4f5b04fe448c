// libkmod sees the tree and only the tree: its module index and its modprobe.d files, never the
// configuration of the machine the tests run on.
#include "host/modules.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

namespace stdfs = std::filesystem;

// No module of the fixture has this alias.
const std::string kModalias = "pci:v0000FEEDd0000BEEFsv00000000sd00000000bc02sc00i00";

class ModprobeD : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string fixture = source_path("tests/fixtures/hosts/intel-workstation");
    t.dir("/lib");
    stdfs::copy(fixture + "/lib/modules", t.real("/lib/modules"),
                stdfs::copy_options::recursive | stdfs::copy_options::copy_symlinks);
    t.file("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
  }
  std::unique_ptr<ModuleIndex> open() {
    fs = make_real_host_fs(t.root());
    return ModuleIndex::open(*fs);
  }

  TempTree t;
  std::unique_ptr<HostFs> fs;
};

TEST_F(ModprobeD, TheIndexAloneHasNoSuchAlias) {
  auto m = open();
  ASSERT_TRUE(m->has_index());
  EXPECT_EQ(m->modules_for_alias("pci:v00008086d000015BCsv00000000sd00000000bc02sc00i00"),
            std::vector<std::string>{"e1000e"});
  EXPECT_TRUE(m->modules_for_alias(kModalias).empty());
  EXPECT_TRUE(m->config_files().empty());
}

TEST_F(ModprobeD, AnAliasInTheTreesModprobeDCounts) {
  t.file("/etc/modprobe.d/local.conf", "alias pci:v0000FEEDd0000BEEF* e1000e\n");
  auto m = open();
  EXPECT_EQ(m->modules_for_alias(kModalias), std::vector<std::string>{"e1000e"});
}

TEST_F(ModprobeD, EveryDirectoryLibkmodReadsAndItsPrecedence) {
  // The same name in /etc and /lib: /etc wins, as in libkmod; other names all count.
  t.file("/lib/modprobe.d/a.conf", "alias pci:v0000FEEDd0000BEEF* from_lib\n");
  t.file("/etc/modprobe.d/a.conf", "alias pci:v0000FEEDd0000BEEF* from_etc\n");
  t.file("/run/modprobe.d/b.conf", "alias pci:v0000FEEDd0000BEEF* from_run\n");
  t.file("/usr/local/lib/modprobe.d/c.conf", "alias pci:v0000FEEDd0000BEEF* from_local\n");
  t.file("/usr/lib/modprobe.d/d.alias", "alias pci:v0000FEEDd0000BEEF* from_usr_lib\n");
  t.file("/etc/modprobe.d/ignored.txt", "alias pci:v0000FEEDd0000BEEF* not_a_conf_file\n");
  auto m = open();
  auto found = m->modules_for_alias(kModalias);
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found,
            (std::vector<std::string>{"from_etc", "from_local", "from_run", "from_usr_lib"}));
}

TEST_F(ModprobeD, EveryPathGivenToLibkmodIsInsideTheTree) {
  TempTree outside;
  outside.file("/alias.conf", "alias pci:v0000FEEDd0000BEEF* from_outside\n");
  t.file("/usr/share/pcipass/linked.conf", "alias pci:v0000FEEDd0000BEEF* linked\n");
  t.file("/etc/modprobe.d/plain.conf", "# nothing\n");
  stdfs::create_symlink("/usr/share/pcipass/linked.conf", t.real("/etc/modprobe.d/linked.conf"));
  stdfs::create_symlink(outside.real("/alias.conf"), t.real("/etc/modprobe.d/outside.conf"));
  stdfs::create_symlink("/dev/null", t.real("/etc/modprobe.d/masked.conf"));
  t.dir("/run");
  stdfs::create_symlink("/etc/modprobe.d", t.real("/run/modprobe.d"));
  auto m = open();
  EXPECT_EQ(m->module_dir(), t.real("/lib/modules/6.1.0-18-amd64"));
  EXPECT_EQ(m->config_files(), (std::vector<std::string>{t.real("/usr/share/pcipass/linked.conf"),
                                                         t.real("/etc/modprobe.d/plain.conf")}));
  for (const auto& f : m->config_files()) EXPECT_TRUE(f.starts_with(t.root() + "/")) << f;
  EXPECT_EQ(m->modules_for_alias(kModalias), std::vector<std::string>{"linked"});
}

// The bug this guards: with the machine's defaults, an alias in the build machine's own
// /etc/modprobe.d changed a fixture's module list.
TEST_F(ModprobeD, TheMachinesModprobeDIsNeverRead) {
  const std::string mine = "/etc/modprobe.d/pcipass-test-" + std::to_string(::getpid()) + ".conf";
  if (::access("/etc/modprobe.d", W_OK) != 0) GTEST_SKIP() << "/etc/modprobe.d is not writable";
  std::ofstream(mine) << "alias pci:v0000FEEDd0000BEEF* machine_only\n";
  struct Remove {
    std::string path;
    ~Remove() { std::remove(path.c_str()); }
  } remove{mine};
  auto m = open();
  EXPECT_TRUE(m->modules_for_alias(kModalias).empty());
}

}  // namespace
}  // namespace pcipass::test
