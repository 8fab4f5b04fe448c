// Runs the pcipass command line in-process, as a user would type it.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/app.h"
#include "host/context.h"

namespace pcipass::test {

struct CliRun {
  int status = -1;
  std::string out, err;
};

// Where tests say the machine's own pci.ids is: nowhere, so no output depends on the build
// machine's file (the fixtures carry their own).
inline constexpr const char* kNoSystemPciIds = "/nonexistent/pcipass-test/pci.ids";

// Runs with the caller's injections, or none; either way with an empty process environment
// (unless the caller gives one) and no system pci.ids (unless the caller names one).
inline CliRun run_cli(std::vector<std::string> args, const cli::Injected* injected = nullptr) {
  cli::Injected hermetic = injected ? *injected : cli::Injected{};
  if (!hermetic.system_pci_ids) hermetic.system_pci_ids = kNoSystemPciIds;
  injected = &hermetic;
  args.insert(args.begin(), "pcipass");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  CliRun r;
  r.status = cli::run(static_cast<int>(args.size()), argv.data(), out, err, injected);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// A process whose clock reads `now`: change set ids and manifests come out the same every run.
inline std::function<ProcessContext(bool)> process_at(int64_t now) {
  return [now](bool live) {
    ProcessContext p;
    p.live = live;
    p.now = [now] { return now; };
    return p;
  };
}

inline std::string source_path(const std::string& rel) {
  return std::string(PCIPASS_SOURCE_DIR) + "/" + rel;
}

// A file's bytes, empty when it cannot be read (a golden file not yet written, say).
inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace pcipass::test
