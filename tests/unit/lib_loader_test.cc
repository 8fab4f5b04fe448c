// libkmod and libpci are dlopen'ed on first use (src/host/kmod_lib.h, src/pci/pci_lib.h).
#include <gtest/gtest.h>

#include <string>

#include "host/kmod_lib.h"
#include "pci/pci_lib.h"

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

}  // namespace
}  // namespace pcipass::test
