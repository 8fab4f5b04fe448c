// MemFs (the fuzzers' in-memory host) must answer as the real HostFs does, or what the fuzzers
// exercise is not what runs: the same answers for the same tree, and every fixture encoded,
// decoded and run through the command line gives its golden output byte for byte.
#include "mem_fs.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <climits>

#include <algorithm>
#include <filesystem>

#include "cli_harness.h"
#include "host_codec.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;

std::string show(const Result<std::string>& r) {
  return r ? "ok:" + *r
           : "error:" + r.error().describe() + " errno " + std::to_string(r.error().err);
}
std::string show(const Result<std::vector<std::string>>& r) {
  if (!r) return "error:" + r.error().describe();
  std::string s = "ok:";
  for (const auto& n : *r) s += n + ",";
  return s;
}

// The same tree on disk and in memory: links absolute and relative, climbing above the root, a
// loop, a file used as a directory, a FIFO.
void build(TempTree& t, MemFs& m) {
  t.file("/sys/devices/pci0000:00/0000:00:01.0/vendor", "0x8086\n");
  m.put_file("/sys/devices/pci0000:00/0000:00:01.0/vendor", "0x8086\n");
  t.dir("/sys/bus/pci/devices").dir("/etc");
  m.put_dir("/sys/bus/pci/devices");
  m.put_dir("/etc");
  auto link = [&](const std::string& path, const std::string& target) {
    fs::create_symlink(target, t.real(path));
    m.put_link(path, target);
  };
  link("/sys/bus/pci/devices/0000:00:01.0", "../../../devices/pci0000:00/0000:00:01.0");
  link("/sys/bus/pci/devices/abs", "/sys/devices/pci0000:00");
  link("/sys/bus/pci/devices/up", "../../../../../../../../etc");
  link("/sys/bus/pci/devices/loop", "loop2");
  link("/sys/bus/pci/devices/loop2", "loop");
  link("/sys/bus/pci/devices/dangling", "nowhere");
  ASSERT_EQ(::mkfifo(t.real("/etc/fifo").c_str(), 0644), 0);
  m.put_fifo("/etc/fifo");
}

TEST(MemFs, AnswersAsTheRealHostFsDoes) {
  TempTree t;
  MemFs m(t.root());
  build(t, m);
  auto real = make_lexical_host_fs(t.root());
  for (const std::string p :
       {"/sys/bus/pci/devices/0000:00:01.0/vendor", "/sys/bus/pci/devices/abs/0000:00:01.0/vendor",
        "/sys/bus/pci/devices/up", "/sys/bus/pci/devices/up/fifo", "/sys/bus/pci/devices/loop",
        "/sys/bus/pci/devices/dangling", "/sys/devices/pci0000:00/0000:00:01.0/vendor/x",
        "/../../sys/./devices/../devices", "/etc/fifo", "/etc", "/missing/x", "/"}) {
    SCOPED_TRACE(p);
    EXPECT_EQ(show(real->read(p, 100)), show(m.read(p, 100)));
    EXPECT_EQ(show(real->read_link(p)), show(m.read_link(p)));
    EXPECT_EQ(show(real->resolve(p)), show(m.resolve(p)));
    EXPECT_EQ(show(real->list(p)), show(m.list(p)));
    EXPECT_EQ(real->type(p, true), m.type(p, true));
    EXPECT_EQ(real->type(p, false), m.type(p, false));
  }
}

// remove_dir, which rollback and undo use for the directories a change made: MemFs had none, so
// the fuzzers saw "rmdir: Operation not supported" wherever a real host removes the directory.
TEST(MemFs, RemovesDirectoriesAsTheRealHostFsDoes) {
  TempTree t;
  MemFs m(t.root());
  t.dir("/etc/empty").file("/etc/full/x", "x").file("/etc/file", "f");
  m.put_dir("/etc/empty");
  m.put_file("/etc/full/x", "x");
  m.put_file("/etc/file", "f");
  auto real = make_real_host_fs(t.root());
  for (const std::string p : {"/etc/empty", "/etc/full", "/etc/file", "/etc/missing", "/no/dir"}) {
    SCOPED_TRACE(p);
    auto a = real->remove_dir(p), b = m.remove_dir(p);
    EXPECT_EQ(a.ok(), b.ok());
    if (!a.ok() && !b.ok()) {
      EXPECT_EQ(a.error().err, b.error().err);
    }
    EXPECT_EQ(real->type(p, false), m.type(p, false));
  }
}

TEST(MemFs, DeniedEntriesFailWithTheirErrno) {
  MemFs m;
  m.put_file("/run/pcipass/state.json", "{}");
  m.deny("/run/pcipass");
  EXPECT_EQ(m.read("/run/pcipass/state.json", 100).error().err, EACCES);
  EXPECT_EQ(m.list("/run/pcipass").error().err, EACCES);
  EXPECT_TRUE(m.read_link("/run").error().err == EINVAL);
}

// A fuzzed log named a path of 47 KB (doctor's romfile check stats it); the walk recursed through
// walk_cached once per component and overflowed the stack. The kernel refuses such a path whole
// (ENAMETOOLONG), and so does MemFs now; one just short of PATH_MAX still walks, links and all.
TEST(MemFs, APathTooLongForTheKernelIsRefusedNotWalked) {
  MemFs m;
  m.put_file("/a/b", "x");
  m.put_link("/l", "/a");
  std::string huge;
  while (huge.size() < 50000) huge += "/l";
  EXPECT_EQ(m.read(huge, 100).error().err, ENAMETOOLONG);
  EXPECT_FALSE(m.exists(huge));
  std::string near = "/l";
  while (near.size() < PATH_MAX - 4) near += "/.";
  near += "/b";
  ASSERT_LT(near.size(), size_t{PATH_MAX});
  ASSERT_TRUE(m.read(near, 100).ok());
  EXPECT_EQ(*m.read(near, 100), "x");
}

// walk()'s two shortcuts (a stored canonical path; a directory reached through a link, kept)
// must answer as the full walk does, also after the tree changes under them.
TEST(MemFs, ShortcutsAnswerAsTheWalkAfterEveryChange) {
  MemFs m;
  m.put_file("/sys/devices/a/config", "A");
  m.put_file("/sys/devices/b/config", "B");
  m.put_link("/sys/bus/pci/devices/x", "../../../devices/a");
  EXPECT_EQ(*m.read("/sys/bus/pci/devices/x/config", 10), "A");
  m.put_link("/sys/bus/pci/devices/x", "/sys/devices/b");  // the link moved: no stale directory
  EXPECT_EQ(*m.read("/sys/bus/pci/devices/x/config", 10), "B");
  ASSERT_TRUE(m.write_atomic("/sys/bus/pci/devices/x/new", "N", 0644));  // a new name: in b
  EXPECT_EQ(*m.read("/sys/devices/b/new", 10), "N");
  m.put_link("/sys/devices/b/config", "/sys/devices/a/config");  // a link at the end is followed
  EXPECT_EQ(*m.read("/sys/bus/pci/devices/x/config", 10), "A");
  EXPECT_EQ(*m.read_link("/sys/devices/b/config"), "/sys/devices/a/config");
  m.put_file("/sys/devices/b", "now a file");  // its entries went with it
  EXPECT_EQ(m.read("/sys/bus/pci/devices/x/config", 10).error().err, ENOTDIR);
  EXPECT_EQ(m.read("/sys/devices/b/config", 10).error().err, ENOTDIR);
  m.deny("/sys/devices");  // a denied directory above a canonical path still denies
  EXPECT_EQ(m.read("/sys/devices/a/config", 10).error().err, EACCES);
}

// The kept directories after rollback(): a link put back, a directory back in place of a file,
// a directory and a link taken away, and files come and gone under a kept directory.
TEST(MemFs, ShortcutsAnswerAsTheWalkAfterARollback) {
  MemFs m;
  m.put_file("/sys/devices/a/config", "A");
  m.put_file("/sys/devices/b/config", "B");
  m.put_link("/sys/bus/pci/devices/x", "../../../devices/a");
  m.checkpoint();
  const std::string x = "/sys/bus/pci/devices/x/config", y = "/sys/bus/pci/devices/y/config";
  EXPECT_EQ(*m.read(x, 10), "A");
  m.put_link("/sys/bus/pci/devices/x", "/sys/devices/b");
  EXPECT_EQ(*m.read(x, 10), "B");
  m.rollback();
  EXPECT_EQ(*m.read(x, 10), "A") << "the link's old target";
  m.put_file("/sys/devices/a", "a file");
  EXPECT_EQ(m.read(x, 10).error().err, ENOTDIR);
  m.rollback();
  EXPECT_EQ(*m.read(x, 10), "A") << "the directory back";
  m.put_file("/sys/devices/c/config", "C");
  m.put_link("/sys/bus/pci/devices/y", "../../../devices/c");
  EXPECT_EQ(*m.read(y, 10), "C");
  m.rollback();
  EXPECT_EQ(m.read(y, 10).error().err, ENOENT) << "the link and its directory gone";
  m.put_file("/sys/devices/a/new", "N");
  EXPECT_EQ(*m.read("/sys/bus/pci/devices/x/new", 10), "N");
  m.rollback();
  EXPECT_EQ(m.read("/sys/bus/pci/devices/x/new", 10).error().err, ENOENT);
  EXPECT_EQ(*m.read(x, 10), "A");
}

TEST(MemFs, WritesLikeAFileSystem) {
  MemFs m;
  ASSERT_TRUE(m.make_dirs("/var/lib/pcipass", 0700));
  ASSERT_TRUE(m.write_atomic("/var/lib/pcipass/x", "1", 0600));
  EXPECT_EQ(m.owner("/var/lib/pcipass/x")->mode, S_IFREG | 0600);
  ASSERT_TRUE(m.write("/var/lib/pcipass/x", "2"));
  EXPECT_EQ(*m.read("/var/lib/pcipass/x", 10), "2");
  EXPECT_FALSE(m.write("/var/lib/pcipass/new", "2"));  // write(2) needs an existing file
  ASSERT_TRUE(m.remove("/var/lib/pcipass/x"));
  EXPECT_EQ(m.type("/var/lib/pcipass/x", true), FileType::kMissing);
  EXPECT_FALSE(m.remove("/var/lib/pcipass"));  // a directory
}

// Every entry below `dir` with its type, owner and contents (or the error reading it).
std::string dump(const MemFs& m, const std::string& dir = "/") {
  std::string out;
  auto names = m.list(dir);
  if (!names) return dir + " " + show(names) + "\n";
  for (const auto& name : *names) {
    std::string path = dir == "/" ? "/" + name : dir + "/" + name;
    auto type = m.type(path, false);
    auto owner = m.owner(path);
    out += path + " type " + std::to_string(static_cast<int>(type)) + " owner " +
           (owner ? std::to_string(owner->uid) + ":" + std::to_string(owner->gid) : "?");
    if (type == FileType::kLink)
      out += " -> " + show(m.read_link(path)) + "\n";
    else if (type == FileType::kDir)
      out += "\n" + dump(m, path);
    else
      out += " " + show(m.read(path, 1 << 20)) + "\n";
  }
  return out;
}

// rollback() puts back what every kind of change did since checkpoint(), twice in a row: the
// fuzz targets start each input from the same host this way instead of copying it.
TEST(MemFs, RollbackPutsBackEveryChangeSinceTheCheckpoint) {
  MemFs m;
  m.put_file("/etc/a", "a\n");
  m.put_dir("/sys/x");
  m.put_file("/sys/x/f", "1");
  m.put_link("/sys/l", "x");
  const std::string before = dump(m);
  m.checkpoint();
  for (int round = 0; round < 2; ++round) {
    m.put_file("/etc/new/deep/b", "b");
    ASSERT_TRUE(m.write("/etc/a", "changed"));
    ASSERT_TRUE(m.write_atomic("/etc/c", "c", 0600));
    ASSERT_TRUE(m.make_dirs("/run/pcipass/x", 0700));
    ASSERT_TRUE(m.remove("/sys/l"));
    ASSERT_TRUE(m.change_owner("/sys/x/f", 1, 2));
    m.put_file("/sys/x", "now a file, its directory and /sys/x/f gone");
    m.deny("/etc/a");
    ASSERT_NE(dump(m), before);
    m.rollback();
    EXPECT_EQ(dump(m), before) << "round " << round;
    EXPECT_TRUE(m.changed().empty());
    EXPECT_TRUE(m.read("/etc/a", 100)) << "the denial was taken back";
  }
}

TEST(HostCodec, AnyBytesDecodeIntoATree) {
  for (std::string bytes : {std::string(), std::string("\x01"), std::string("\xff\xff\\"),
                            std::string("\0\x0a../../x\\\ny\\\\\\\n", 14)}) {
    MemFs m;
    decode_host(bytes, m);
    EXPECT_GE(m.entries(), 1u);
  }
  MemFs m;
  decode_host(std::string("\x01") + encode_record(RecordKind::kLink, "/sys/a\\b", "t\\\n") +
                  encode_record(RecordKind::kConfig, "/sys/config", "ab"),
              m);
  EXPECT_EQ(*m.read_link("/sys/a\\b"), "t\\\n");
  EXPECT_EQ(m.read("/sys/config", 1 << 20)->size(), 4096u);
}

// The root is a directory on every host. A fuzzed host (the host target,
// regressions/host/memfs-root-as-file) named a file at "/": make() unlinked the old root, which
// unlink_node() keeps, and made it again, forever, until the stack overflowed. MemFs now refuses
// it, and the codec leaves such a record out.
TEST(MemFs, TheRootIsADirectoryWhateverIsPutThere) {
  MemFs m;
  m.put_file("/etc/a", "x");
  EXPECT_THROW(m.put_file("/", "x"), std::invalid_argument);
  EXPECT_THROW(m.put_link("/etc/..", "/x"), std::invalid_argument);
  EXPECT_THROW(m.put_fifo("/"), std::invalid_argument);
  EXPECT_TRUE(m.is_dir("/"));
  EXPECT_EQ(*m.read("/etc/a", 10), "x");
  MemFs d;
  decode_host(std::string(1, '\0') + encode_record(RecordKind::kFile, "/", "x") +
                  encode_record(RecordKind::kFile, "/etc/ok", "y"),
              d);
  EXPECT_TRUE(d.is_dir("/"));
  EXPECT_EQ(*d.read("/etc/ok", 10), "y");
}

// A record whose path the kernel could not name (PATH_MAX bytes or more) is left out: no file
// could be made or read by it. MemFs keys each directory by its whole path, so a file 30,000
// directories deep cost 1 GB and 10 s here (and its parents are made by recursion, 2,048 deep at
// most below PATH_MAX).
TEST(HostCodec, ARecordWhosePathTheKernelCouldNotNameIsLeftOut) {
  std::string deep = "/etc/";
  while (deep.size() < 60000) deep += "d/";
  MemFs m;
  auto d = decode_host(std::string(1, '\0') + encode_record(RecordKind::kFile, deep + "f", "x") +
                           encode_record(RecordKind::kFile, "/etc/ok", "y"),
                       m);
  EXPECT_EQ(d.records, 2u);
  EXPECT_FALSE(m.exists("/etc/d"));
  EXPECT_EQ(*m.read("/etc/ok", 10), "y");
}

// The golden cases of golden_test.cc, run on the fixture decoded from its encoding (what the
// whole-host fuzzer's seeds are), with the fixture directory behind local_path() for libpci and
// libkmod: the output must be the golden one.
TEST(HostCodec, EncodedFixturesGiveTheGoldenOutput) {
  for (const auto& e : fs::directory_iterator(source_path("tests/fixtures/hosts"))) {
    if (!e.is_directory()) continue;
    std::string root = e.path();
    std::string name = e.path().filename();
    SCOPED_TRACE(name);
    MemFs m(root, root);
    decode_host(encode_host(root), m);
    cli::Injected inj;
    inj.fs = &m;
    std::vector<std::pair<std::string, std::vector<std::string>>> cases;
    for (const char* cmd : {"check", "list", "groups", "tree"}) {
      cases.push_back({cmd, {"--root", root, cmd}});
      cases.push_back({std::string(cmd) + ".json", {"--root", root, "--json", cmd}});
    }
    std::vector<std::string> show = {"--root", root, "show"};
    for (const auto& d : fs::directory_iterator(root + "/sys/bus/pci/devices"))
      show.push_back(d.path().filename());
    std::sort(show.begin() + 3, show.end());
    cases.push_back({"show", show});
    show.insert(show.begin() + 2, "--json");
    cases.push_back({"show.json", show});
    for (const auto& [file, args] : cases) {
      CliRun r = run_cli(args, &inj);
      std::string got = r.out + "[exit " + std::to_string(r.status) + "]\n";
      if (!r.err.empty()) got += "[stderr]\n" + r.err;
      EXPECT_EQ(read_all(source_path("tests/golden/" + name + "/" + file)), got) << file;
    }
  }
}

}  // namespace
}  // namespace pcipass::test
