#include "fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "host_codec.h"

namespace pcipass::fuzz {

const test::MemFs& base_host(const std::string& name) {
  static std::map<std::string, std::unique_ptr<test::MemFs>> hosts;
  auto& slot = hosts[name];
  if (!slot) {
    slot = std::make_unique<test::MemFs>("/fuzz");
    test::decode_host(test::encode_host(PCIPASS_SOURCE_DIR "/tests/fixtures/hosts/" + name), *slot);
  }
  return *slot;
}

namespace {
test::MemFs& scratch(const std::string& name) {
  static std::map<std::string, std::unique_ptr<test::MemFs>> hosts;
  auto& slot = hosts[name];
  if (!slot) {
    slot = std::make_unique<test::MemFs>(base_host(name));
    slot->checkpoint();
  }
  return *slot;
}
}  // namespace

ScratchHost::ScratchHost(const std::string& name) : fs_(scratch(name)) {}

TempFile::TempFile(test::MemFs& fs, const std::string& path, std::string data) : fs_(fs) {
  fs_.checkpoint();
  // Through the links of its directory (/proc/self), as a reader would find it.
  std::string target = path;
  auto slash = path.rfind('/');
  if (auto dir = fs_.resolve(path.substr(0, slash)); dir && slash != std::string::npos)
    target = join_path(*dir, path.substr(slash + 1));
  fs_.put_file(target, std::move(data));
}

void make_parents(test::MemFs& fs, const std::string& path) {
  auto slash = path.rfind('/');
  if (slash > 0 && fs.type(path.substr(0, slash), true) == FileType::kMissing)
    fs.put_dir(path.substr(0, slash));
}

void violated(const std::string& what) {
  std::fprintf(stderr, "oracle violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace pcipass::fuzz
