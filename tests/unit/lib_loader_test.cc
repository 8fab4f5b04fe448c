// libkmod, libpci and libarchive are dlopen'ed on first use through one helper
// (src/host/dynamic_lib.h); a library that does not load is never silent: `check` names it and
// the package, and list/show --json say why names are unavailable.
#include <gtest/gtest.h>

#include <string>

#include "check/check.h"
#include "host/dynamic_lib.h"
#include "host/kmod_lib.h"
#include "host/modules.h"
#include "pci/ids.h"
#include "pci/pci_lib.h"
#include "snapshot/archive_lib.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

TEST(KmodLib, MissingLibraryNamesItAndThePackage) {
  auto lib = load_kmod_lib("libkmod-does-not-exist.so.2");
  ASSERT_FALSE(lib.ok());
  EXPECT_NE(lib.error().message.find("libkmod-does-not-exist.so.2"), std::string::npos);
  EXPECT_NE(lib.error().fix.find("libkmod2"), std::string::npos);
}

TEST(KmodLib, InstalledLibraryResolvesEveryFunction) {
  auto lib = kmod_lib();
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  EXPECT_NE((*lib)->kmod_list_next, nullptr);
  EXPECT_NE((*lib)->kmod_module_probe_insert_module, nullptr);
}

TEST(PciLib, MissingLibraryNamesItAndThePackage) {
  auto lib = load_pci_lib("libpci-does-not-exist.so.3");
  ASSERT_FALSE(lib.ok());
  EXPECT_NE(lib.error().message.find("libpci-does-not-exist.so.3"), std::string::npos);
  EXPECT_NE(lib.error().fix.find("libpci3"), std::string::npos);
}

TEST(PciLib, InstalledLibraryResolvesEveryFunction) {
  auto lib = pci_lib();
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  EXPECT_NE((*lib)->pci_lookup_name, nullptr);
}

TEST(ArchiveLib, MissingLibraryNamesItAndThePackage) {
  auto lib = load_archive_lib("libarchive-does-not-exist.so.13");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.error().message.rfind(
                "cannot load libarchive-does-not-exist.so.13 to write the snapshot: ", 0),
            0u)
      << lib.error().message;
  EXPECT_NE(lib.error().fix.find("apt install libarchive13"), std::string::npos);
}

TEST(DynamicLib, AMissingFunctionIsNamed) {
  LibrarySpec spec{"libc.so.6", "to test", "install libc6"};
  auto libc = DynamicLib::open(spec);
  ASSERT_TRUE(libc.ok()) << libc.error().message;
  int (*fn)(void) = nullptr;
  auto st = libc->resolve(fn, "pcipass_no_such_function");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message,
            "cannot load libc.so.6 to test: it has no pcipass_no_such_function");
  EXPECT_EQ(st.error().fix, "install libc6");
  size_t (*len)(const char*) = nullptr;
  ASSERT_TRUE(libc->resolve(len, "strlen").ok());
  EXPECT_EQ(len("abc"), 3u);
}

// `check` says which library did not load and how to install it.
TEST(Libraries, CheckNamesAMissingLibraryAndTheFix) {
  TempTree t;
  auto fs = make_real_host_fs(t.root());
  auto modules = ModuleIndex::open(*fs);
  Libraries libs;
  libs.kmod = load_kmod_lib("libkmod.so.0-missing").error();
  libs.pci = load_pci_lib("libpci.so.0-missing").error();
  auto r = run_checks(*fs, *modules, libs);
  const CheckResult* line = r.find("libraries");
  ASSERT_NE(line, nullptr);
  EXPECT_EQ(line->status, CheckStatus::kWarn);
  EXPECT_NE(line->detail.find("cannot load libkmod.so.0-missing to read kernel modules"),
            std::string::npos)
      << line->detail;
  EXPECT_NE(line->detail.find("cannot load libpci.so.0-missing to name PCI IDs"),
            std::string::npos);
  EXPECT_NE(line->fix.find("apt install libkmod2"), std::string::npos) << line->fix;
  EXPECT_NE(line->fix.find("apt install libpci3"), std::string::npos) << line->fix;
  auto ok = run_checks(*fs, *modules, Libraries{});
  EXPECT_EQ(ok.find("libraries")->status, CheckStatus::kPass);
  EXPECT_EQ(ok.find("libraries")->detail, "libkmod.so.2 loads; libpci.so.3 loads");
  // As `check` runs it: libkmod only when a module question needs it, libpci never.
  Libraries lazy;
  lazy.kmod_needed = lazy.pci_needed = false;
  EXPECT_EQ(run_checks(*fs, *modules, lazy).find("libraries")->detail,
            "libkmod.so.2 not needed: every module is loaded or built in");
}

TEST(Libraries, NamesSayWhyTheyAreUnavailable) {
  PciIds none("");
  ASSERT_TRUE(none.unavailable().has_value());
  EXPECT_EQ(none.unavailable()->message, "no pci.ids: devices have no names");
  TempTree t;
  t.file("/pci.ids", "8086  Intel Corporation\n");
  PciIds some(t.real("/pci.ids"));
  EXPECT_FALSE(some.unavailable().has_value());
  EXPECT_EQ(some.vendor(0x8086), "Intel Corporation");
}

}  // namespace
}  // namespace pcipass::test
