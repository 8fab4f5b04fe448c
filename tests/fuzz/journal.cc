// Journal and state files (src/assign/journal.*): /run/pcipass/journal.json and state.json, as a
// crash or an editor may leave them. Oracles: what pcipass writes it reads back; a journal that
// fails validation leaves every device untouched when `recover` runs on it.
#include <string>

#include "assign/assign.h"
#include "assign/journal.h"
#include "fake_runner.h"
#include "fuzz_support.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto j = assign::parse_journal(text)) {
    test::MemFs out;
    if (!assign::save_journal(out, *j)) fuzz::violated("save_journal failed");
    auto back = assign::load_journal(out);
    if (!back || !*back) fuzz::violated("a journal pcipass wrote does not load");
  }
  // The seeds' devices (01:00.0, 01:00.1) are this host's GPU and its audio function.
  fuzz::ScratchHost scratch("intel-workstation");
  test::MemFs& host = scratch.fs();
  host.put_file(assign::kStatePath, text);
  if (auto s = assign::load_state(host)) {
    test::MemFs out;
    if (!assign::save_state(out, *s)) fuzz::violated("save_state failed");
    if (!assign::load_state(out)) fuzz::violated("a state pcipass wrote does not load");
  }
  (void)assign::status(host);

  host.put_file(assign::kJournalPath, text);
  bool valid = static_cast<bool>(assign::load_journal(host));
  fuzz::NoLoader loader;
  test::FakeRunner runner;
  assign::Environment env;
  env.loader = &loader;
  env.runner = &runner;
  env.sleep_ms = [](int) {};
  env.node_wait_ms = 0;
  env.impact.processes = false;
  (void)assign::recover(host, env);
  if (!valid)
    for (const auto& path : host.changed())
      if (path.starts_with("/sys/") || path.starts_with("/dev/"))
        fuzz::violated("recover changed " + path + " with a journal that fails validation");
  return 0;
}
