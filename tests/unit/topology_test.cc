// tree --format dot|svg: the DOT the library writes (goldens in tests/golden/HOST/tree.dot), its
// quoting of host-controlled names, and the SVG Graphviz makes of it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_harness.h"
#include "fake_runner.h"
#include "impact/topology.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

namespace fs = std::filesystem;

TEST(DotQuote, EscapesWhatWouldEndTheStringOrCommandGraphviz) {
  EXPECT_EQ(dot_quote("plain name [10de:1b80]"), "\"plain name [10de:1b80]\"");
  EXPECT_EQ(dot_quote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(dot_quote("C:\\N\\G"), "\"C:\\\\N\\\\G\"");  // not Graphviz's \N (node name)
  EXPECT_EQ(dot_quote("line\nnext\r\t"), "\"line\\\\x0anext\\\\x0d\\\\x09\"");
  EXPECT_EQ(dot_quote("\x1b[31mred\x7f"), "\"\\\\x1b[31mred\\\\x7f\"");
  EXPECT_EQ(dot_quote("bad \xff\xfe byte"), "\"bad \\\\xff\\\\xfe byte\"");
  EXPECT_EQ(dot_quote("\xc0\xaf"), "\"\\\\xc0\\\\xaf\"");             // overlong '/'
  EXPECT_EQ(dot_quote("\xed\xa0\x80"), "\"\\\\xed\\\\xa0\\\\x80\"");  // a surrogate
  EXPECT_EQ(dot_quote("cut \xe2\x80"), "\"cut \\\\xe2\\\\x80\"");     // truncated sequence
  EXPECT_EQ(dot_quote("rtl \xe2\x80\xae"), "\"rtl \\\\u202e\"");
  EXPECT_EQ(dot_quote("Gr\xc3\xa4"
                      "fik \xe2\x9c\x93"),
            "\"Gr\xc3\xa4"
            "fik \xe2\x9c\x93\"");
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// Every line of the graph is whole: its strings are closed on it and it holds no control byte.
void expect_well_formed_dot(const std::string& dot) {
  EXPECT_TRUE(valid_utf8(dot));
  EXPECT_EQ(dot.rfind("digraph pcipass {\n", 0), 0u);
  EXPECT_TRUE(dot.ends_with("}\n"));
  std::istringstream in(dot);
  int depth = 0;
  for (std::string line; std::getline(in, line);) {
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      unsigned char c = line[i];
      ASSERT_GE(c, 0x20) << line;
      if (quoted && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (!quoted && c == '{') ++depth;
      if (!quoted && c == '}') --depth;
    }
    EXPECT_FALSE(quoted) << "string left open: " << line;
  }
  EXPECT_EQ(depth, 0);
}

bool have(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

// The number of <g class="cluster"> of an SVG, -1 when it is not well-formed XML (Python's
// parser, as a reader of the file would use).
int svg_clusters(const std::string& svg) {
  TempTree t;
  t.file("/out.svg", svg);
  std::string cmd =
      "python3 -c 'import sys, xml.etree.ElementTree as E\n"
      "t = E.parse(sys.argv[1])\n"
      "print(sum(1 for g in t.iter(\"{http://www.w3.org/2000/svg}g\") "
      "if g.get(\"class\") == \"cluster\"))' " +
      t.real("/out.svg") + " > " + t.real("/n") + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return -1;
  std::ifstream in(t.real("/n"));
  int n = -1;
  in >> n;
  return n;
}

class HostileTopology : public ::testing::Test {
 protected:
  void SetUp() override {
    t.gpu_workstation();
    // Names no one would choose: a quote, backslashes that look like Graphviz's escapes, a
    // newline, an escape sequence, bytes that are not UTF-8, a bidirectional override.
    t.file("/usr/share/misc/pci.ids",
           "8086  Evil \"Corp\" \\N \\G\n"
           "\t10d3  NIC\\\" ] ; node [label=pwned\x1b[31m \xff\xfe \xe2\x80\xae\n"
           "10de  NVIDIA Corporation\n"
           "\t1b80  GP104 [GeForce GTX 1080]\n"
           "C 02  Network controller\n\t00  Ether\"net\\ controller\n");
    std::string dev = "/sys/devices/pci0000:00/0000:00:01.0";
    t.remove(dev + "/driver");
    std::string name = "e1000e\"\\\n\xff";
    t.dir("/sys/bus/pci/drivers/" + name);
    t.link(dev + "/driver", "/sys/bus/pci/drivers/" + name);
  }
  TempTree t;
};

TEST_F(HostileTopology, NamesCannotBreakTheGraph) {
  CliRun r = run_cli({"--root", t.root(), "tree", "--format", "dot"});
  ASSERT_EQ(r.status, 0) << r.err;
  expect_well_formed_dot(r.out);
  EXPECT_NE(r.out.find("NIC\\\\\\\" ] ; node [label=pwned\\\\x1b[31m \\\\xff\\\\xfe \\\\u202e"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[8086:10d3] e1000e\\\"\\\\\\\\x0a\\\\xff\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Ether\\\"net\\\\ controller"), std::string::npos) << r.out;
  if (!have("dot")) GTEST_SKIP() << "Graphviz's dot is not installed (apt install graphviz)";
  CliRun svg = run_cli({"--root", t.root(), "tree", "--format", "svg"});
  ASSERT_EQ(svg.status, 0) << svg.err;
  if (!have("python3")) GTEST_SKIP() << "python3 is not installed: the SVG is not parsed";
  EXPECT_EQ(svg_clusters(svg.out), 4 + 1);  // groups 0-3 and the legend
}

// Every fixture host: the graph is well formed, has one cluster per IOMMU group, every device
// once, and (with Graphviz) its SVG parses with one cluster per group and the legend.
TEST(Topology, FixturesDrawOneClusterPerGroup) {
  bool dot = have("dot"), python = have("python3");
  for (const auto& e : fs::directory_iterator(source_path("tests/fixtures/hosts"))) {
    if (!e.is_directory()) continue;
    std::string root = e.path();
    SCOPED_TRACE(root);
    int groups = 0, devices = 0;
    if (fs::exists(root + "/sys/kernel/iommu_groups"))
      for (const auto& g : fs::directory_iterator(root + "/sys/kernel/iommu_groups")) {
        (void)g;
        ++groups;
      }
    for (const auto& d : fs::directory_iterator(root + "/sys/bus/pci/devices")) {
      (void)d;
      ++devices;
    }
    CliRun r = run_cli({"--root", root, "tree", "--format", "dot"});
    ASSERT_EQ(r.status, 0) << r.err;
    expect_well_formed_dot(r.out);
    size_t clusters = 0, nodes = 0;
    for (size_t at = 0; (at = r.out.find("subgraph \"cluster_group_", at)) != std::string::npos;
         ++at)
      ++clusters;
    for (size_t at = 0; (at = r.out.find(" [label=\"0000:", at)) != std::string::npos; ++at)
      ++nodes;
    EXPECT_EQ(clusters, static_cast<size_t>(groups));
    EXPECT_EQ(nodes, static_cast<size_t>(devices));
    if (!dot || !python) continue;
    CliRun svg = run_cli({"--root", root, "tree", "--format", "svg"});
    ASSERT_EQ(svg.status, 0) << svg.err;
    EXPECT_EQ(svg_clusters(svg.out), groups + 1);
  }
  if (!dot) GTEST_SKIP() << "Graphviz's dot is not installed: the SVGs were not checked";
  if (!python) GTEST_SKIP() << "python3 is not installed: the SVGs were not parsed";
}

TEST(Topology, SvgCheckCanFail) {
  if (!have("python3")) GTEST_SKIP() << "python3 is not installed";
  EXPECT_EQ(svg_clusters("<svg xmlns=\"http://www.w3.org/2000/svg\"><g class=\"cluster\"/></svg>"),
            1);
  EXPECT_EQ(svg_clusters("<svg xmlns=\"http://www.w3.org/2000/svg\"><g class=\"cluster\"></svg>"),
            -1);
}

TEST(Topology, HostCriticalDevicesAreOutlinedAndVerdictsColoured) {
  std::string root = source_path("tests/fixtures/hosts/qemu-q35-iommu-on");
  CliRun list = run_cli({"--root", root, "--json", "list"});
  CliRun r = run_cli({"--root", root, "tree", "--format", "dot"});
  ASSERT_EQ(r.status, 0) << r.err;
  // Each device's node carries its verdict's colour, and host-critical ones the red border.
  size_t critical = 0;
  for (size_t at = 0; (at = list.out.find("\"verdict\":\"", at)) != std::string::npos; ++at) {
    size_t start = at + 11, end = list.out.find('"', start);
    std::string verdict = list.out.substr(start, end - start);
    critical += verdict == "host-critical";
  }
  size_t outlined = 0;
  for (size_t at = 0; (at = r.out.find("color=\"#cc0000\", penwidth=3", at)) != std::string::npos;
       ++at)
    ++outlined;
  ASSERT_GT(critical, 0u);
  EXPECT_EQ(outlined, critical + 1);  // and the legend's sample
  EXPECT_NE(r.out.find(std::string("fillcolor=\"") + verdict_colour(Verdict::kBridge) + "\""),
            std::string::npos);
}

TEST(Topology, SvgWithoutGraphvizNamesThePackage) {
  FakeRunner runner;
  runner.not_found("dot");
  auto svg = render_svg(runner, "digraph pcipass {}\n");
  ASSERT_FALSE(svg);
  EXPECT_NE(svg.error().fix.find("apt install graphviz"), std::string::npos) << svg.error().fix;
  cli::Injected injected;
  injected.local_runner = &runner;
  std::string root = source_path("tests/fixtures/hosts/qemu-q35-iommu-on");
  CliRun r = run_cli({"--root", root, "tree", "--format", "svg"}, &injected);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("apt install graphviz"), std::string::npos) << r.err;
  ASSERT_EQ(runner.calls.size(), 2u);  // render_svg's, then the command's: dot alone runs
  EXPECT_EQ(runner.calls[1].argv, (std::vector<std::string>{"dot", "-Tsvg"}));
  EXPECT_EQ(runner.calls[1].stdin_data->rfind("digraph pcipass {", 0), 0u);
}

TEST(Topology, SvgFromWhatDotPrints) {
  FakeRunner runner;
  runner.on({"dot", "-Tsvg"}, FakeRunner::success("<svg/>\n"));
  cli::Injected injected;
  injected.local_runner = &runner;
  std::string root = source_path("tests/fixtures/hosts/qemu-q35-iommu-on");
  CliRun r = run_cli({"--root", root, "tree", "--format", "svg"}, &injected);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "<svg/>\n");
  FakeRunner failing;
  failing.on({"dot", "-Tsvg"}, FakeRunner::failure(1, "Error: syntax error in line 3\n"));
  injected.local_runner = &failing;
  r = run_cli({"--root", root, "tree", "--format", "svg"}, &injected);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("syntax error in line 3"), std::string::npos) << r.err;
}

TEST(Topology, JsonAndAPictureAreRefused) {
  std::string root = source_path("tests/fixtures/hosts/qemu-q35-iommu-on");
  CliRun r = run_cli({"--root", root, "--json", "tree", "--format", "dot"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("\"kind\": \"invalid-argument\""), std::string::npos) << r.out;
  r = run_cli({"--root", root, "tree", "--format", "png"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace pcipass::test
