// What the fuzz targets share: a base host (a fixture, read once into memory), the files of it a
// selector byte picks, and the quiet ports the library needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/module_loader.h"
#include "mem_fs.h"

namespace pcipass::fuzz {

// tests/fixtures/hosts/NAME decoded from its encoding (no local_path: no pci.ids, no libkmod);
// read once, then copied for each input so no input sees another's changes.
const test::MemFs& base_host(const std::string& name = "sriov-server");

// A file slot of a target: the input's first byte picks one (modulo the count), the rest is its
// contents. Seeds (make_seeds) are each fixture's file behind its selector byte.
struct Slot {
  const char* path;
};

// Loads nothing: the fuzzed host must never reach the machine's kernel.
class NoLoader : public ModuleLoader {
 public:
  Status load(const std::string& module) override {
    return Error::refused("not loading " + module + " while fuzzing");
  }
};

// Stops the process (a finding) when an oracle fails: libFuzzer saves the input.
[[noreturn]] void violated(const std::string& what);

}  // namespace pcipass::fuzz
