// A whole host from fuzzed bytes (host_codec.h: records of files, directories, links, FIFOs,
// devices and unreadable entries under /sys, /proc, /etc, /dev, /run/pcipass ...) in a MemFs, and
// the read-only commands run on it through the command line, as a user would: check, list,
// groups, show, tree, plan and status. Flags byte: bit 0 runs as a user (uid 1000), bit 1 as the
// live host (--root /), bit 2 with --color always, bit 3 with --json.
// Oracles: no internal error (exit 70: an exception that escaped every check, which the command
// line turns into a message); every --json output is one valid JSON document; `tree --format dot`
// (without --json) writes a graph whose every line closes its strings and holds no control byte,
// whatever the names (src/impact/topology.cc's quoting).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli_harness.h"
#include "fake_runner.h"
#include "fuzz_support.h"
#include "host_codec.h"
#include "pci/inventory.h"

using namespace pcipass;

namespace {

test::CliRun run(const std::vector<std::string>& args, test::MemFs& host, uint8_t flags) {
  fuzz::NoLoader loader;
  test::FakeRunner runner;
  cli::Injected inj;
  inj.fs = &host;
  inj.env.loader = &loader;
  inj.env.runner = &runner;
  inj.env.sleep_ms = [](int) {};
  inj.env.node_wait_ms = 0;
  inj.process = [flags](bool live) {
    ProcessContext p;
    p.uid = (flags & 1) ? 1000 : 0;
    p.live = live;
    p.now = [] { return int64_t{1795000000}; };
    p.sleep_ms = [](int) {};
    return p;
  };
  std::vector<std::string> full = {"--root", (flags & 2) ? "/" : "/tmp"};
  if (flags & 4) full.push_back("--color=always");
  bool json = flags & 8;
  if (json) full.push_back("--json");
  full.insert(full.end(), args.begin(), args.end());
  test::CliRun r = test::run_cli(full, &inj);
  if (r.status == cli::kExitInternal)
    fuzz::violated("pcipass " + args.front() + " ended in an internal error: " + r.err);
  if (json && !nlohmann::json::accept(r.out))
    fuzz::violated("pcipass " + args.front() + " --json printed no valid JSON document");
  return r;
}

// Each line's quoted strings are closed on it (a backslash escapes the next byte) and no byte is a
// control character: nothing from the host ended a string or started a line of its own.
bool well_formed_dot(const std::string& dot) {
  bool quoted = false;
  for (size_t i = 0; i < dot.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(dot[i]);
    if (c == '\n') {
      if (quoted) return false;
      continue;
    }
    if (c < 0x20 || c == 0x7f) return false;
    if (quoted && c == '\\') {
      ++i;
      if (i < dot.size() && dot[i] == '\n') return false;
    } else if (c == '"') {
      quoted = !quoted;
    }
  }
  return !quoted;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  test::MemFs host("/fuzz");
  auto d =
      test::decode_host(std::string_view(reinterpret_cast<const char*>(data), size), host, 4096);
  // Devices for show and plan: the first entries of /sys/bus/pci/devices, whatever they are.
  std::vector<std::string> devices;
  for (const auto& name : host.list(kPciDevicesDir).value_or({}))
    if (devices.size() < 3) devices.push_back(name);
  for (const char* cmd : {"check", "list", "groups", "tree", "status"}) run({cmd}, host, d.flags);
  test::CliRun dot = run({"tree", "--format", "dot"}, host, d.flags);
  if (dot.status == 0 && !well_formed_dot(dot.out))
    fuzz::violated("pcipass tree --format dot wrote a string left open or a control byte");
  if (!devices.empty()) {
    for (const char* cmd : {"show", "plan"}) {
      std::vector<std::string> args = {cmd};
      args.insert(args.end(), devices.begin(), devices.end());
      run(args, host, d.flags);
    }
  }
  return 0;
}
