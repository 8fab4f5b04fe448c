// The backends of the table in initramfs.cc, one file each, and what they share.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "initramfs/initramfs.h"

namespace pcipass::initramfs {

extern const Backend kInitramfsToolsBackend;  // initramfs_tools.cc
extern const Backend kDracutBackend;          // dracut.cc
extern const Backend kMkinitcpioBackend;      // mkinitcpio.cc

// A file's bytes, nullopt when it does not exist.
Result<std::optional<std::string>> read_optional(const HostFs& fs, const std::string& path);
// `path` written with `bytes`, after creating its directory when missing.
void plan_write(const HostFs& fs, std::vector<change::Change>& plan, const std::string& path,
                std::string bytes, mode_t mode = 0644);
// `text` (nullopt: a new file starting with `header`) with `line` appended on a line of its own.
std::string append_line(std::optional<std::string> text, const std::string& header,
                        const std::string& line);
// Words of `words` not in `listed`, '-' and '_' alike for modules.
std::vector<std::string> missing_words(const std::vector<std::string>& words,
                                       const std::vector<std::string>& listed, bool modules);
std::string join_words(const std::vector<std::string>& words);

inline constexpr const char* kHeader =
    "# Written by `pcipass setup` (PCI passthrough); `pcipass undo` reverts it.\n";

}  // namespace pcipass::initramfs
