// What the process knows (environment, "is this the live host") reaches the library only through
// ProcessContext: colour, the SSH session and module loading follow it, not the real process.
#include "host/context.h"

#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

#include "cli/format.h"
#include "host/module_loader.h"
#include "impact/impact.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

ProcessContext process(std::map<std::string, std::string> env, bool live) {
  ProcessContext p;
  p.environment = std::move(env);
  p.live = live;
  return p;
}

TEST(ProcessContext, NoColorComesFromTheContextsEnvironment) {
  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) GTEST_SKIP() << "no pty";
  EXPECT_TRUE(cli::detect_term(slave, "auto", process({}, true)).color);
  EXPECT_FALSE(cli::detect_term(slave, "auto", process({{"NO_COLOR", "1"}}, true)).color);
  EXPECT_TRUE(cli::detect_term(slave, "auto", process({{"NO_COLOR", ""}}, true)).color);
  EXPECT_TRUE(cli::detect_term(slave, "always", process({{"NO_COLOR", "1"}}, true)).color);
  EXPECT_FALSE(cli::detect_term(slave, "never", process({}, true)).color);
  ::close(slave);
  ::close(master);
}

TEST(ProcessContext, TheSshSessionCountsOnlyOnTheLiveHost) {
  const std::string conn = "198.51.100.77 50000 198.51.100.5 22";
  EXPECT_EQ(ImpactOptions::for_process(process({{"SSH_CONNECTION", conn}}, true)).ssh_connection,
            conn);
  EXPECT_EQ(ImpactOptions::for_process(process({{"SSH_CONNECTION", conn}}, false)).ssh_connection,
            std::nullopt);
  EXPECT_EQ(ImpactOptions::for_process(process({}, true)).ssh_connection, std::nullopt);
}

TEST(ProcessContext, ModulesAreLoadedOnlyIntoTheLiveHost) {
  TempTree t;
  auto fs = make_real_host_fs(t.root());
  auto s = make_kmod_loader(process({}, false), *fs)->load("pcipass_no_such_module");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "module pcipass_no_such_module is not loaded in the tree at " +
                                   t.root() + ", and pcipass loads modules only on the live host");
}

}  // namespace
}  // namespace pcipass::test
