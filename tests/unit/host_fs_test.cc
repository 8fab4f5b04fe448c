// HostFs is a sealed door: every path resolves inside its root (absolute links point into the
// tree, ".." stops at its top), and only regular files are read, so a FIFO or a device node
// where an attribute is expected is refused at once instead of blocking.
#include "host/host_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>

#include "deny_fs.h"
#include "fifo_watchdog.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

// Both resolvers: openat2(RESOLVE_IN_ROOT), and the lexical one used where the kernel lacks it.
using Factory = std::unique_ptr<HostFs> (*)(std::string);

class HostFsInRoot : public ::testing::TestWithParam<Factory> {
 protected:
  void SetUp() override {
    t.file("/etc/hostname", "tree-host\n");
    outside.file("/secret", "the machine's file\n");
    fs = GetParam()(t.root());
  }
  // A link at `path` in the tree whose stored target is exactly `target`.
  void raw_link(const std::string& path, const std::string& target) {
    stdfs::create_directories(stdfs::path(t.real(path)).parent_path());
    stdfs::create_symlink(target, t.real(path));
  }

  TempTree t, outside;
  std::unique_ptr<HostFs> fs;
};

TEST_P(HostFsInRoot, AnAbsoluteLinkPointsIntoTheTree) {
  raw_link("/sys/devices/x/hostname", "/etc/hostname");
  EXPECT_EQ(fs->read("/sys/devices/x/hostname").value_or("?"), "tree-host\n");
  EXPECT_EQ(fs->read_link("/sys/devices/x/hostname").value_or("?"), "/etc/hostname");
  EXPECT_EQ(fs->resolve("/sys/devices/x/hostname").value_or("?"), "/etc/hostname");
  EXPECT_EQ(fs->type("/sys/devices/x/hostname"), FileType::kFile);
  EXPECT_EQ(fs->type("/sys/devices/x/hostname", false), FileType::kLink);
  EXPECT_EQ(fs->local_path("/sys/devices/x/hostname").value_or("?"), t.real("/etc/hostname"));
}

TEST_P(HostFsInRoot, ALinkToAMachinePathNeverReachesTheMachine) {
  // The target exists on the machine, not in the tree: in the tree it is simply missing.
  raw_link("/sys/leak", outside.real("/secret"));
  auto r = fs->read("/sys/leak");
  ASSERT_FALSE(r.ok()) << "read the machine's file: " << *r;
  EXPECT_EQ(r.error().err, ENOENT);
  EXPECT_EQ(fs->type("/sys/leak"), FileType::kMissing);
  EXPECT_FALSE(fs->resolve("/sys/leak").ok());
  EXPECT_FALSE(fs->local_path("/sys/leak").has_value());
  // ... and once the tree has that path, the tree's copy is what is read.
  t.file(outside.real("/secret"), "the tree's copy\n");
  EXPECT_EQ(fs->read("/sys/leak").value_or("?"), "the tree's copy\n");
  EXPECT_EQ(fs->local_path("/sys/leak").value_or("?"), t.real(outside.real("/secret")));
}

TEST_P(HostFsInRoot, DotDotStopsAtTheTop) {
  raw_link("/sys/a/b/up", "../../../../../../../../../../etc/hostname");
  EXPECT_EQ(fs->read("/sys/a/b/up").value_or("?"), "tree-host\n");
  EXPECT_EQ(fs->read("/../../../../etc/hostname").value_or("?"), "tree-host\n");
  EXPECT_EQ(fs->read("/sys/../../../etc/hostname").value_or("?"), "tree-host\n");
  EXPECT_EQ(fs->resolve("/sys/a/b/up").value_or("?"), "/etc/hostname");
  EXPECT_EQ(fs->resolve("/../..").value_or("?"), "/");
  // The tree's top has no "secret", though the directory above it might.
  EXPECT_FALSE(fs->read("/../" + stdfs::path(outside.root()).filename().string() + "/secret").ok());
}

TEST_P(HostFsInRoot, DirectoryLinksListAndWriteInsideTheTree) {
  t.file("/data/one", "1");
  t.file("/data/two", "2");
  raw_link("/sys/class/d", "/data");
  EXPECT_EQ(fs->list("/sys/class/d").value_or({}), (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(fs->is_dir("/sys/class/d"));
  ASSERT_TRUE(fs->write("/sys/class/d/one", "x").ok());
  EXPECT_EQ(t.read("/data/one"), "x");
  ASSERT_TRUE(fs->write_atomic("/sys/class/d/three", "3", 0644).ok());
  EXPECT_EQ(t.read("/data/three"), "3");
  ASSERT_TRUE(fs->make_dirs("/sys/class/d/new/deeper", 0755).ok());
  EXPECT_TRUE(stdfs::is_directory(t.real("/data/new/deeper")));
  ASSERT_TRUE(fs->remove("/sys/class/d/two").ok());
  EXPECT_FALSE(stdfs::exists(t.real("/data/two")));
  ASSERT_TRUE(fs->lock("/sys/class/d/lock").ok());
  EXPECT_TRUE(stdfs::exists(t.real("/data/lock")));
}

TEST_P(HostFsInRoot, WritesThroughALinkOutOfTheTreeStayInIt) {
  raw_link("/run/out", outside.root());
  raw_link("/run/secret", outside.real("/secret"));
  EXPECT_FALSE(fs->write("/run/secret", "overwritten").ok());
  EXPECT_FALSE(fs->write_atomic("/run/out/secret", "overwritten", 0644).ok());
  (void)fs->remove("/run/out/secret");  // nothing there in the tree: nothing to remove
  EXPECT_FALSE(fs->change_owner("/run/secret", 12345, 12345).ok());
  EXPECT_FALSE(fs->make_dirs("/run/out/made", 0755).ok() && stdfs::exists(outside.real("/made")));
  EXPECT_EQ(outside.read("/secret"), "the machine's file\n");
  struct stat st {};
  ASSERT_EQ(::stat(outside.real("/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::getuid());
  int entries = 0;
  for (const auto& e : stdfs::directory_iterator(outside.root())) entries += e.exists();
  EXPECT_EQ(entries, 1) << "something was created beside the machine's file";
}

TEST_P(HostFsInRoot, LinksFollowAtMostFortyDeep) {
  t.file("/chain/end", "end\n");
  auto chain = [&](const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i)
      raw_link("/chain/" + prefix + std::to_string(i),
               i + 1 == n ? "/chain/end" : "/chain/" + prefix + std::to_string(i + 1));
    return "/chain/" + prefix + "0";
  };
  EXPECT_EQ(fs->read(chain("ok", 40)).value_or("?"), "end\n");
  auto r = fs->read(chain("long", 41));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().err, ELOOP);
  raw_link("/chain/loop-a", "/chain/loop-b");
  raw_link("/chain/loop-b", "loop-a");
  EXPECT_EQ(fs->read("/chain/loop-a").error().err, ELOOP);
  EXPECT_EQ(fs->type("/chain/loop-a"), FileType::kMissing);
}

TEST_P(HostFsInRoot, ReadEachResolvesEveryNameInsideTheTree) {
  const std::string dev = "/sys/devices/pci0000:00/0000:00:01.0";
  t.file(dev + "/vendor", "0x8086\n");
  t.file(dev + "/sub/device", "0x100e\n");
  raw_link(dev + "/abs", "/etc/hostname");
  raw_link(dev + "/rel", "../../../../etc/hostname");
  raw_link(dev + "/out", outside.real("/secret"));
  auto r = fs->read_each(
      dev, {"vendor", "sub/device", "abs", "rel", "out", "../../../../etc/hostname", "missing"});
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].value_or("?"), "0x8086\n");
  EXPECT_EQ(r[1].value_or("?"), "0x100e\n");
  EXPECT_EQ(r[2].value_or("?"), "tree-host\n");
  EXPECT_EQ(r[3].value_or("?"), "tree-host\n");
  EXPECT_FALSE(r[4].ok());
  EXPECT_EQ(r[5].value_or("?"), "tree-host\n");
  ASSERT_FALSE(r[6].ok());
  EXPECT_EQ(r[6].error().path, dev + "/missing");
}

// A directory is opened from its parent when that is kept open (a scan's siblings): one name,
// never following a link there, which takes the walk inside the root instead.
TEST_P(HostFsInRoot, ADirectoryThatIsALinkLeadsInsideTheTree) {
  const std::string bus = "/sys/devices/pci0000:00";
  t.file(bus + "/0000:00:01.0/vendor", "0x8086\n");
  raw_link(bus + "/0000:00:02.0", outside.root());
  raw_link(bus + "/0000:00:03.0", "/etc");
  EXPECT_EQ(fs->read(bus + "/0000:00:01.0/vendor").value_or("?"), "0x8086\n");
  auto r = fs->read_each(bus + "/0000:00:02.0", {"secret"});
  ASSERT_FALSE(r[0].ok()) << "read the machine's file: " << *r[0];
  EXPECT_EQ(fs->read_each(bus + "/0000:00:03.0", {"hostname"})[0].value_or("?"), "tree-host\n");
  EXPECT_EQ(fs->type(bus + "/0000:00:02.0/secret"), FileType::kMissing);
  t.file(outside.real("/secret"), "the tree's copy\n");
  EXPECT_EQ(fs->read_each(bus + "/0000:00:02.0", {"secret"})[0].value_or("?"), "the tree's copy\n");
}

TEST_P(HostFsInRoot, AFifoWhereAnAttributeIsExpectedIsRefusedAtOnce) {
  const std::string dev = "/sys/devices/pci0000:00/0000:00:01.0";
  t.dir(dev);
  std::string fifo = t.real(dev + "/vendor");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  auto r = without_blocking_on(fifo, [&] { return fs->read(dev + "/vendor"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kRefused);
  EXPECT_EQ(r.error().path, dev + "/vendor");
  EXPECT_EQ(r.error().message, dev +
                                   "/vendor is a FIFO, not a file; pcipass reads only regular "
                                   "files there");
  auto each = without_blocking_on(fifo, [&] { return fs->read_each(dev, {"vendor"}); });
  ASSERT_FALSE(each.at(0).ok());
  EXPECT_EQ(each[0].error().kind, ErrorKind::kRefused);
  auto w = without_blocking_on(fifo, [&] { return fs->write(dev + "/vendor", "1"); });
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("is a FIFO, not a file"), std::string::npos)
      << w.error().message;
  auto l = without_blocking_on(fifo, [&] { return fs->lock(dev + "/vendor").ok(); });
  EXPECT_FALSE(l);
  // Through a link the same.
  raw_link("/sys/bus/pci/devices/0000:00:01.0", dev);
  auto via = without_blocking_on(
      fifo, [&] { return fs->read("/sys/bus/pci/devices/0000:00:01.0/vendor"); });
  EXPECT_FALSE(via.ok());
}

TEST_P(HostFsInRoot, ADeviceNodeIsNeverRead) {
  const std::string dev = "/sys/devices/pci0000:00/0000:00:01.0";
  t.dir(dev);
  // The numbers of /dev/zero: reading it would succeed with zero bytes, never end of file.
  if (::mknod(t.real(dev + "/config").c_str(), S_IFCHR | 0644, makedev(1, 5)) != 0)
    GTEST_SKIP() << "mknod needs CAP_MKNOD: " << std::strerror(errno);
  auto r = fs->read(dev + "/config", 64);
  ASSERT_FALSE(r.ok()) << r->size() << " bytes read from a character device";
  EXPECT_EQ(r.error().message, dev +
                                   "/config is a character device, not a file; pcipass reads "
                                   "only regular files there");
  EXPECT_FALSE(fs->read_each(dev, {"config"}).at(0).ok());
  EXPECT_FALSE(fs->write(dev + "/config", "1").ok());
  // A link to the machine's /dev/null is the tree's /dev/null: absent here.
  raw_link(dev + "/null", "/dev/null");
  EXPECT_EQ(fs->read(dev + "/null").error().err, ENOENT);
}

// Refused before open(2): opening a node can act (a watchdog starts on open), so the type is
// looked at first. inotify sees every open of the node; a read must cause none.
TEST_P(HostFsInRoot, ANodeIsNeverOpened) {
  const std::string dev = "/sys/devices/pci0000:00/0000:00:01.0";
  t.dir(dev);
  std::string fifo = t.real(dev + "/vendor");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  raw_link("/sys/bus/pci/devices/0000:00:01.0", dev);
  int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(in, 0);
  ASSERT_GE(::inotify_add_watch(in, fifo.c_str(), IN_OPEN), 0);
  EXPECT_FALSE(fs->read(dev + "/vendor").ok());
  EXPECT_FALSE(fs->read_each(dev, {"vendor"}).at(0).ok());
  EXPECT_FALSE(fs->read("/sys/bus/pci/devices/0000:00:01.0/vendor").ok());  // through a link
  alignas(inotify_event) char buf[4096];
  ssize_t n = ::read(in, buf, sizeof buf);
  EXPECT_EQ(n, -1) << "the node was opened (" << n << " bytes of inotify events)";
  ::close(in);
}

TEST_P(HostFsInRoot, DirectoriesAreNotFiles) {
  t.dir("/sys/dir");
  auto r = fs->read("/sys/dir");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "/sys/dir is a directory, not a file; pcipass reads only regular "
            "files there");
}

// read_value is where "unreadable" and "absent" part: an attribute that is not there has no
// value, one that cannot be read is an error (ModuleIndex, show's modalias and the change engine's
// old values rely on it); read_trimmed, for callers that may take either as none, folds them.
TEST(HostFsValue, AbsentIsNoValueAndUnreadableIsAnError) {
  TempTree t;
  t.file("/sys/a/value", " 0x10de\n").file("/sys/a/secret", "1\n");
  DenyFs fs(t, {"/sys/a/secret"});
  EXPECT_EQ(fs.read_value("/sys/a/value").value(), std::optional<std::string>("0x10de"));
  auto absent = fs.read_value("/sys/a/none");
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(*absent, std::nullopt);
  auto denied = fs.read_value("/sys/a/secret");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().err, EACCES);
  EXPECT_EQ(fs.read_trimmed("/sys/a/secret"), std::nullopt);
  EXPECT_EQ(fs.read_trimmed("/sys/a/value"), "0x10de");
}

INSTANTIATE_TEST_SUITE_P(Resolvers, HostFsInRoot,
                         ::testing::Values(&make_real_host_fs, &make_lexical_host_fs),
                         [](const auto& info) {
                           return std::string(info.index == 0 ? "Openat2" : "Lexical");
                         });

TEST(HostFsLive, TheLiveRootIsTheMachine) {
  auto fs = make_real_host_fs("/");
  EXPECT_EQ(fs->root(), "/");
  EXPECT_EQ(fs->type("/proc/self/status"), FileType::kFile);
  EXPECT_TRUE(fs->read("/proc/self/status").ok());
  EXPECT_EQ(fs->local_path("/proc/self/status").value_or("?").substr(0, 6), "/proc/");
  auto lexical = make_lexical_host_fs("/");
  EXPECT_TRUE(lexical->read("/proc/self/status").ok());
}

}  // namespace
}  // namespace pcipass::test
