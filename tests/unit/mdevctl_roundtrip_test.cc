// Definitions written by pcipass are read by mdevctl and the other way round, with Debian's
// mdevctl (1.2). mdevctl has no option for another root (its DefaultEnvironment is "/"), so the
// test gives it an empty /etc/mdevctl.d of its own: a tmpfs over it in a private mount
// namespace (`unshare -m`, root only). Skipped, with the reason, without mdevctl or root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "host/runner.h"
#include "mdev/mdev.h"
#include "sample_double.h"

namespace pcipass::test {
namespace {

const std::string kOurs = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
const std::string kTheirs = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002";

// Output sections of the script, in order, split at lines "--- NAME".
std::map<std::string, std::string> sections(const std::string& out) {
  std::map<std::string, std::string> s;
  std::string name, cur;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    std::string line = out.substr(pos, nl - pos);
    if (line.starts_with("--- ")) {
      if (!name.empty()) s[name] = cur;
      name = line.substr(4);
      cur.clear();
    } else {
      cur += line + "\n";
    }
    pos = nl + 1;
  }
  if (!name.empty()) s[name] = cur;
  return s;
}

TEST(MdevctlRoundTrip, EachReadsTheOthersDefinitions) {
  if (::access("/usr/bin/mdevctl", X_OK) != 0)
    GTEST_SKIP() << "mdevctl is not installed (apt-get install mdevctl; scripts/install-deps)";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private mount namespace (unshare -m)";
  // pcipass writes its definition through the double, as `mdev create --persist --auto` does.
  SampleDouble d;
  d.start();
  d.t.dir("/sys/bus/mdev/drivers/vfio_mdev");
  d.k->mdev_parent("mtty", "/sys/devices/virtual/mtty/mtty",
                   {{"mtty-2", "Dual port serial", "", "vfio-pci", 1, ENOSPC}});
  auto made = d.cli({"mdev", "create", "mtty", "mtty-2", "--uuid", kOurs, "--persist", "--auto"});
  ASSERT_EQ(made.status, 0) << made.err;
  std::string ours = d.t.read("/etc/mdevctl.d/mtty/" + kOurs);

  std::string script =
      "set -e\n"
      "mount -t tmpfs pcipass-test /etc/mdevctl.d\n"
      "mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers "
      "/etc/mdevctl.d/mtty\n"
      "cat > /etc/mdevctl.d/mtty/" +
      kOurs +
      "\n"
      "echo '--- list'\n"
      "mdevctl list --defined --dumpjson\n"
      "mdevctl define --parent mtty --type mtty-1 --uuid " +
      kTheirs +
      "\n"
      "mdevctl modify --uuid " +
      kTheirs +
      " --addattr=assign_irq --value=1\n"
      "echo '--- theirs'\n"
      "cat /etc/mdevctl.d/mtty/" +
      kTheirs +
      "\n"
      "echo\n";
  Invocation inv;
  inv.argv = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", script};
  inv.environment = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
  inv.stdin_data = ours;
  inv.timeout_ms = 30000;
  auto r = make_real_runner()->run(inv);
  ASSERT_TRUE(r.ok()) << r.error().message;
  if (!r->ok()) GTEST_SKIP() << "unshare/mount not possible here: " << r->err;
  auto s = sections(r->out);

  // mdevctl reads pcipass's file: its list is what pcipass's list says mdevctl would print.
  auto mine = d.cli({"mdev", "list", "--defined", "--json"});
  ASSERT_EQ(mine.status, 0) << mine.err;
  EXPECT_EQ(nlohmann::json::parse(s["list"]), nlohmann::json::parse(mine.out)["mdevctl"])
      << s["list"];

  // pcipass reads mdevctl's file (attrs too), and writes the same bytes for the same definition.
  std::string theirs = s["theirs"].substr(0, s["theirs"].size() - 1);  // the echo's newline
  auto parsed = mdev::parse_config(theirs, "mtty", kTheirs);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message << "\n" << theirs;
  EXPECT_EQ(parsed->type, "mtty-1");
  EXPECT_EQ(parsed->start, mdev::Start::kManual);
  ASSERT_EQ(parsed->attrs.size(), 1u);
  EXPECT_EQ(parsed->attrs[0].name, "assign_irq");
  EXPECT_EQ(parsed->attrs[0].value, "1");
  EXPECT_EQ(mdev::config_text(*parsed), theirs);
}

}  // namespace
}  // namespace pcipass::test
