// sample_host on the sysfs double, with the ports a command needs and a CLI over them: the
// fixture of the assignment, journal and hotplug tests. A plain base (not a ::testing::Test) so
// that a fixture with another base (Hotplug : Qmp) can have it too; call start() in SetUp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "cli_harness.h"
#include "fake_kernel.h"
#include "temp_tree.h"

namespace pcipass::test {

struct SampleDouble {
  void start() {
    sample_host(t);
    k = std::make_unique<FakeKernel>(t);
    sample_natives(*k);
    loader = std::make_unique<FakeLoader>(*k);
    env.loader = loader.get();
    env.sleep_ms = [](int) {};
    env.node_wait_ms = 100;
    injected.fs = k.get();
    injected.env = env;
  }
  // After a change of `env`, for the CLI to see it.
  void use_env() { injected.env = env; }
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--root", t.root()});
    return run_cli(args, &injected);
  }

  TempTree t;
  std::unique_ptr<FakeKernel> k;
  std::unique_ptr<FakeLoader> loader;
  assign::Environment env;
  cli::Injected injected;
};

}  // namespace pcipass::test
