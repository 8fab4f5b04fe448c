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

// `data` at `path` of a long-lived host for one input, then the host as it was (MemFs::rollback):
// cheaper than a copy of the host per input, for targets whose code under test only reads. The
// rollback also forgets the write in MemFs::changed(): a record that grew by a path per input
// made libFuzzer see more allocations than frees in every run and scan the whole heap for leaks
// each time (check_files and impact_files ran 7 times slower). Create the slots' parent
// directories once beforehand (make_parents) so that an input does not build and drop them.
class TempFile {
 public:
  TempFile(test::MemFs& fs, const std::string& path, std::string data);
  ~TempFile() { fs_.rollback(); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

 private:
  test::MemFs& fs_;
};
void make_parents(test::MemFs& fs, const std::string& path);

// base_host(name) to change freely for one input: one long-lived copy per name, whose changes
// (any, through HostFs or put_*) are taken back when the guard goes (MemFs::rollback). For
// targets whose code under test writes or whose input edits the tree: a copy of the host per
// input was most of an execution (journal, sysfs_device).
class ScratchHost {
 public:
  explicit ScratchHost(const std::string& name);
  ~ScratchHost() { fs_.rollback(); }
  ScratchHost(const ScratchHost&) = delete;
  ScratchHost& operator=(const ScratchHost&) = delete;
  test::MemFs& fs() { return fs_; }

 private:
  test::MemFs& fs_;
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
