#include "host_codec.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace pcipass::test {
namespace {

// Where the files pcipass reads live; a record's path is relative to one of them. 32 entries:
// the kind byte's upper 5 bits index it.
constexpr const char* kBases[32] = {
    "/",
    "/sys/bus/pci/devices/",
    "/sys/devices/",
    "/sys/kernel/iommu_groups/",
    "/sys/bus/pci/drivers/",
    "/sys/class/net/",
    "/sys/class/block/",
    "/sys/class/",
    "/sys/module/",
    "/sys/firmware/acpi/tables/",
    "/sys/dev/block/",
    "/sys/",
    "/proc/",
    "/proc/net/",
    "/proc/self/",
    "/proc/sys/kernel/",
    "/etc/",
    "/etc/modprobe.d/",
    "/etc/default/",
    "/lib/modules/",
    "/lib/modprobe.d/",
    "/dev/",
    "/dev/vfio/",
    "/run/pcipass/",
    "/var/lib/pcipass/changes/",
    "/usr/share/misc/",
    "/sys/class/iommu/",
    "/sys/class/drm/",
    "/sys/class/vtconsole/",
    "/sys/class/graphics/",
    "/sys/devices/pci0000:00/",
    "/run/",
};

constexpr size_t kConfigSize = 4096;

}  // namespace

// FuzzedDataProvider::ConsumeRandomLengthString's rule.
std::string take_string(std::string_view& in) {
  std::string out;
  while (!in.empty()) {
    char c = in.front();
    in.remove_prefix(1);
    if (c == '\\' && !in.empty()) {
      char next = in.front();
      in.remove_prefix(1);
      if (next != '\\') break;
    }
    out += c;
  }
  return out;
}

namespace {

void put_string(std::string& out, std::string_view s) {
  for (char c : s) {
    out += c;
    if (c == '\\') out += '\\';
  }
  out += "\\\n";
}

bool has_data(RecordKind k) {
  return k == RecordKind::kFile || k == RecordKind::kLink || k == RecordKind::kDeniedFile ||
         k == RecordKind::kConfig;
}

void apply(RecordKind kind, const std::string& path, std::string data, MemFs& fs) {
  switch (kind) {
    case RecordKind::kFile:
      fs.put_file(path, std::move(data));
      break;
    case RecordKind::kDir:
      fs.put_dir(path);
      break;
    case RecordKind::kLink:
      fs.put_link(path, std::move(data));
      break;
    case RecordKind::kFifo:
      fs.put_fifo(path);
      break;
    case RecordKind::kCharDevice:
      fs.put_char_device(path);
      break;
    case RecordKind::kDeniedFile:
      fs.put_file(path, std::move(data));
      fs.deny(path);
      break;
    case RecordKind::kDeniedDir:
      fs.put_dir(path);
      fs.deny(path);
      break;
    case RecordKind::kConfig:
      if (data.size() < kConfigSize) data.resize(kConfigSize, '\0');
      fs.put_file(path, std::move(data));
      break;
  }
}

}  // namespace

DecodedHost decode_host(std::string_view in, MemFs& fs, size_t max_records) {
  DecodedHost d;
  if (in.empty()) return d;
  d.flags = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  while (!in.empty() && d.records < max_records) {
    auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    auto kind = static_cast<RecordKind>(byte & 7);
    std::string path = std::string(kBases[byte >> 3]) + take_string(in);
    std::string data = has_data(kind) ? take_string(in) : std::string();
    // Left out, as no host can have them: a path of PATH_MAX bytes or more (the kernel refuses it
    // whole, so nothing could be made or read by it; MemFs keys each directory by its whole path,
    // and a 60 KB path cost 1 GB), and anything but a directory at "/" (MemFs refuses it).
    try {
      if (path.size() < PATH_MAX) apply(kind, path, std::move(data), fs);
    } catch (const std::invalid_argument&) {
    }
    ++d.records;
  }
  return d;
}

std::string encode_record(RecordKind kind, const std::string& path, std::string_view data) {
  size_t best = 0;
  for (size_t i = 1; i < 32; ++i)
    if (path.starts_with(kBases[i]) &&
        std::string_view(kBases[i]).size() > std::string_view(kBases[best]).size())
      best = i;
  std::string out(1, static_cast<char>((best << 3) | static_cast<uint8_t>(kind)));
  put_string(out, path.substr(std::string_view(kBases[best]).size()));
  if (has_data(kind)) put_string(out, data);
  return out;
}

std::string encode_host(const std::string& dir, const EncodeOptions& options) {
  namespace fs = std::filesystem;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it)
    paths.push_back(it->path());
  std::sort(paths.begin(), paths.end());
  std::string out(1, static_cast<char>(options.flags));
  for (const auto& p : paths) {
    std::string host = "/" + p.lexically_relative(dir).string();
    auto st = fs::symlink_status(p);
    if (fs::is_symlink(st)) {
      out += encode_record(RecordKind::kLink, host, fs::read_symlink(p).string());
    } else if (fs::is_directory(st)) {
      // Only empty directories need a record: a file's record creates its parents.
      if (fs::is_empty(p)) out += encode_record(RecordKind::kDir, host);
    } else if (fs::is_regular_file(st)) {
      std::ifstream in(p, std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      std::string data = s.str();
      bool config = p.filename() == "config" && data.size() == kConfigSize;
      if (config) {
        data.erase(data.find_last_not_of('\0') + 1);
        out += encode_record(RecordKind::kConfig, host, data);
        continue;
      }
      if (data.size() > options.max_file) data.clear();
      out += encode_record(RecordKind::kFile, host, data);
    } else if (fs::is_character_file(st)) {
      out += encode_record(RecordKind::kCharDevice, host);
    } else {
      out += encode_record(RecordKind::kFifo, host);
    }
  }
  return out;
}

}  // namespace pcipass::test
