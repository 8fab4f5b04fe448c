// A host tree as bytes, for the whole-host fuzzer: seeds are encoded from the fixtures, and any
// bytes at all decode into a MemFs (files, directories, links, FIFOs, character devices, entries
// that refuse to be read) under the directories pcipass reads, so mutations of a seed stay a
// host: a changed byte edits a file, a link target or an entry's name.
//
// Format: one flags byte, then records until the input ends. A record is a kind byte (low 3 bits
// the entry type, the upper 5 bits a base directory from a table: /sys/bus/pci/devices/,
// /proc/net/, /etc/ ...), the path below that base, and for files and links their contents or
// target. Strings end at a backslash followed by any other byte; two backslashes stand for one
// (libFuzzer's FuzzedDataProvider::ConsumeRandomLengthString), so binary contents need no length.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mem_fs.h"

namespace pcipass::test {

struct DecodedHost {
  uint8_t flags = 0;
  size_t records = 0;
};

// Builds the tree in `fs`. At most `max_records` records are read.
DecodedHost decode_host(std::string_view bytes, MemFs& fs, size_t max_records = 20000);

struct EncodeOptions {
  uint8_t flags = 0;
  // Files above this size are encoded empty (pci.ids, module indexes: read by libraries through
  // local_path(), which the fuzzer's MemFs does not have); config spaces are exempt.
  size_t max_file = 256 * 1024;
};

// The tree below `dir` on disk, in the format above. A `config` file ending in zeros is
// encoded trimmed, with the kind that pads it back to 4096 bytes.
std::string encode_host(const std::string& dir, const EncodeOptions& options = {});

// One record, for generated seeds and tests.
enum class RecordKind : uint8_t {
  kFile = 0,
  kDir = 1,
  kLink = 2,
  kFifo = 3,
  kCharDevice = 4,
  kDeniedFile = 5,  // a file reading it fails with EACCES
  kDeniedDir = 6,   // a directory listing or entering it fails with EACCES
  kConfig = 7,      // a file padded with zeros to 4096 bytes
};
std::string encode_record(RecordKind kind, const std::string& path, std::string_view data = {});

// Takes one string of the format from the front of `in`.
std::string take_string(std::string_view& in);

}  // namespace pcipass::test
