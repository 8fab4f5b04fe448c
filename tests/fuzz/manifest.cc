// Change set manifests (src/change/store.*, validate.*): /var/lib/pcipass/changes/ID/manifest.json
// as a crash or an editor may leave it, read by `undo --list`, `undo` and `recover`.
#include <string>

#include "change/store.h"
#include "change/validate.h"
#include "fake_runner.h"
#include "fuzz_support.h"

using namespace pcipass;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = std::string(change::kStoreDir) + "/20261122-000000/manifest.json";
  (void)change::parse_json(text, path);
  (void)change::parse_manifest(text, path);
  test::MemFs host;
  host.put_file("/etc/modules-load.d/pcipass.conf", "vfio-pci\n");
  host.put_file(path, text);
  (void)change::list_change_sets(host);
  fuzz::NoLoader loader;
  test::FakeRunner runner;
  // No clock: programs ran at 0; no netlink.
  change::Ports ports{&loader, &runner, [](int) {}, {}, nullptr};
  (void)change::undo_change_set(host, std::nullopt, ports, /*dry_run=*/true);
  (void)change::recover_durable(host, ports);
  return 0;
}
