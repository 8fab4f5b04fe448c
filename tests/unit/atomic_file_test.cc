// replace_file_at: the file keeps its mode, owner and extended attributes; a failure leaves the
// original and no temporary; a new file gets the mode asked for, whatever the umask.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include "host/atomic_file.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override { dirfd = ::open(t.root().c_str(), O_RDONLY | O_DIRECTORY); }
  void TearDown() override { ::close(dirfd); }
  std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(t.root()))
      out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }
  TempTree t;
  int dirfd = -1;
};

TEST_F(AtomicFile, KeepsModeOwnerAndExtendedAttributes) {
  t.file("/grub", "old\n");
  std::string p = t.real("/grub");
  ::chmod(p.c_str(), 0640);
  ASSERT_EQ(::chown(p.c_str(), 4321, 8765), 0);
  ASSERT_EQ(::setxattr(p.c_str(), "user.label", "keep-me", 7, 0), 0);
  ASSERT_TRUE(replace_file_at(dirfd, "grub", "new\n", {}, "/grub").ok());
  EXPECT_EQ(t.read("/grub"), "new\n");
  struct stat st {};
  ::stat(p.c_str(), &st);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 4321u);
  EXPECT_EQ(st.st_gid, 8765u);
  char v[32] = {};
  EXPECT_EQ(::getxattr(p.c_str(), "user.label", v, sizeof v), 7);
  EXPECT_STREQ(v, "keep-me");
  EXPECT_EQ(names(), std::vector<std::string>{"grub"});
}

TEST_F(AtomicFile, ANewFileGetsTheModeAskedForDespiteTheUmask) {
  mode_t old = ::umask(077);
  ReplaceOptions o;
  o.mode = 0644;
  Status st = replace_file_at(dirfd, "new.conf", "x", o, "/new.conf");
  ::umask(old);
  ASSERT_TRUE(st.ok());
  struct stat s {};
  ::stat(t.real("/new.conf").c_str(), &s);
  EXPECT_EQ(s.st_mode & 07777, 0644u);
}

TEST_F(AtomicFile, ForcedMetadataWins) {
  t.file("/f", "a");
  ReplaceOptions o;
  o.mode = 0600;
  o.force_mode = true;
  o.uid = 11;
  o.gid = 22;
  ASSERT_TRUE(replace_file_at(dirfd, "f", "b", o, "/f").ok());
  struct stat s {};
  ::stat(t.real("/f").c_str(), &s);
  EXPECT_EQ(s.st_mode & 07777, 0600u);
  EXPECT_EQ(s.st_uid, 11u);
  EXPECT_EQ(s.st_gid, 22u);
}

TEST_F(AtomicFile, AFailedRenameLeavesTheOriginalAndNoTemporary) {
  t.dir("/target");  // a directory: rename(2) of a file over it fails with EISDIR
  t.file("/target/inside", "keep");
  Status st = replace_file_at(dirfd, "target", "data", {}, "/target");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.substr(0, 14), "rename /target");
  EXPECT_EQ(names(), std::vector<std::string>{"target"});
  EXPECT_EQ(t.read("/target/inside"), "keep");
}

TEST_F(AtomicFile, TemporariesHaveUniqueRandomNames) {
  // Pre-existing temporaries are never opened or removed (O_EXCL picks another name).
  t.file("/.pcipass-AAAAAA", "someone's");
  ASSERT_TRUE(replace_file_at(dirfd, "f", "x", {}, "/f").ok());
  EXPECT_EQ(names(), (std::vector<std::string>{".pcipass-AAAAAA", "f"}));
  EXPECT_EQ(t.read("/.pcipass-AAAAAA"), "someone's");
}

}  // namespace
}  // namespace pcipass::test
