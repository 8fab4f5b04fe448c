// unified_diff against what Debian's diffutils prints: each expected text below is the output of
// `diff -u --label a/etc/f --label b/etc/f BEFORE AFTER` (diffutils 3.8) for the same inputs.
#include <gtest/gtest.h>

#include "util/diff.h"

namespace pcipass::test {
namespace {

std::string diff(const std::string& a, const std::string& b) {
  return unified_diff(a, b, "/etc/f");
}

TEST(UnifiedDiff, EqualTextsGiveNothing) {
  EXPECT_EQ(diff("a\nb\n", "a\nb\n"), "");
  EXPECT_EQ(diff("", ""), "");
}

TEST(UnifiedDiff, AppendedLine) {
  EXPECT_EQ(diff("vfio\nkvm\n", "vfio\nkvm\nvfio_pci\n"),
            "--- a/etc/f\n+++ b/etc/f\n@@ -1,2 +1,3 @@\n vfio\n kvm\n+vfio_pci\n");
}

TEST(UnifiedDiff, DistantChangesMakeTwoHunks) {
  EXPECT_EQ(diff("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n",
                 "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nM\nn\n"),
            "--- a/etc/f\n+++ b/etc/f\n"
            "@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n"
            "@@ -10,5 +10,5 @@\n j\n k\n l\n-m\n+M\n n\n");
}

TEST(UnifiedDiff, ChangesSixLinesApartShareAHunk) {
  EXPECT_EQ(diff("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n", "a\nB\nc\nd\ne\nf\ng\nh\nI\nj\nk\nl\n"),
            "--- a/etc/f\n+++ b/etc/f\n@@ -1,12 +1,12 @@\n a\n-b\n+B\n c\n d\n e\n f\n g\n h\n"
            "-i\n+I\n j\n k\n l\n");
}

TEST(UnifiedDiff, MissingNewlineAtEnd) {
  EXPECT_EQ(diff("one\ntwo", "one\ntwo\nthree\n"),
            "--- a/etc/f\n+++ b/etc/f\n@@ -1,2 +1,3 @@\n one\n-two\n\\ No newline at end of file\n"
            "+two\n+three\n");
  EXPECT_EQ(diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10"),
            "--- a/etc/f\n+++ b/etc/f\n@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+10\n"
            "\\ No newline at end of file\n");
}

TEST(UnifiedDiff, EmptyBefore) {
  EXPECT_EQ(diff("", "x\ny\n"), "--- a/etc/f\n+++ b/etc/f\n@@ -0,0 +1,2 @@\n+x\n+y\n");
}

TEST(UnifiedDiff, OneChangedLineInTheMiddle) {
  EXPECT_EQ(diff("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nX\ne\nf\ng\nh\n"),
            "--- a/etc/f\n+++ b/etc/f\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+X\n e\n f\n g\n");
}

TEST(UnifiedDiff, ReorderedLinesDeleteFirst) {
  EXPECT_EQ(diff("a\nb\nc\n", "c\nb\na\n"),
            "--- a/etc/f\n+++ b/etc/f\n@@ -1,3 +1,3 @@\n-a\n-b\n c\n+b\n+a\n");
}

TEST(UnifiedDiff, CreatedFileHasDevNullHeader) {
  EXPECT_EQ(unified_diff("", "vfio\n", "/etc/m.conf", true, false),
            "--- /dev/null\n+++ b/etc/m.conf\n@@ -0,0 +1 @@\n+vfio\n");
}

}  // namespace
}  // namespace pcipass::test
