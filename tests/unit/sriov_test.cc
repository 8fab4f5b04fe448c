// vf list/create/remove against the sysfs double: the kernel's order (autoprobe off, numvfs
// through 0), no VF ever on a host driver with --bind, refusals, a fault at every write and a
// crash after every write, each leaving the PF and its VFs as they were.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sample_double.h"
#include "sriov/sriov.h"

namespace pcipass::test {
namespace {

const std::string kBus = "/sys/devices/pci0000:00";
const std::string kPf = "/sys/bus/pci/devices/0000:00:04.0";

PciAddress addr(const std::string& s) {
  return parse_address(s).value();
}

// sample_host plus an SR-IOV NVMe PF at 00:04.0 (group 5, nvme, 7 VFs at 00:04.1..00:04.7 that
// nvme also drives).
void sriov_host(TempTree& t) {
  sample_host(t);
  t.pci_device(kBus, "0000:00:04.0", 0x1b36, 0x0010, 0x010802, "nvme", 5);
}
void sriov_kernel(FakeKernel& k) {
  sample_natives(k);
  k.native("0000:00:04.0", "nvme");
  k.sriov("0000:00:04.0", {7, 1, 1, 0x0010, "nvme"});
  k.register_driver("vfio-pci");
}

// Everything but the lock file: two equal states mean the host is as it was.
std::string host_state(const TempTree& t) {
  std::string out, all = t.state();
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    std::string line = all.substr(pos, nl - pos + 1);
    if (!line.starts_with("/run/pcipass")) out += line;
    pos = nl + 1;
  }
  return out;
}

class Sriov : public ::testing::Test, public SampleDouble {
 protected:
  void SetUp() override {
    t.pci_device(kBus, "0000:00:04.0", 0x1b36, 0x0010, 0x010802, "nvme", 5);
    start();
    sriov_kernel(*k);
  }
  Result<sriov::Report> create(int n, bool bind = true, FakeKernel* kern = nullptr) {
    sriov::CreateRequest r;
    r.pf = addr("0000:00:04.0");
    r.count = n;
    if (bind) r.bind = "vfio-pci";
    return sriov::create(kern ? *kern : *k, r, env);
  }
  Result<sriov::Report> remove(FakeKernel* kern = nullptr) {
    return sriov::remove(kern ? *kern : *k, {addr("0000:00:04.0"), false, nullptr}, env);
  }
};

TEST_F(Sriov, CreateBindsEveryVfBeforeAnyHostDriverSeesIt) {
  auto r = create(3);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::vector<std::string> want = {kPf + "/sriov_drivers_autoprobe <- 0",
                                   kPf + "/sriov_numvfs <- 3"};
  for (const char* vf : {"0000:00:04.1", "0000:00:04.2", "0000:00:04.3"}) {
    want.push_back("/sys/bus/pci/devices/" + std::string(vf) + "/driver_override <- vfio-pci");
    want.push_back("/sys/bus/pci/drivers_probe <- " + std::string(vf));
  }
  EXPECT_EQ(k->writes(), want);
  EXPECT_EQ(r->created.size(), 3u);
  EXPECT_EQ(r->bound.size(), 3u);
  for (int g : {6, 7, 8}) EXPECT_TRUE(k->exists("/dev/vfio/" + std::to_string(g)));
  // No VF was ever on nvme: nothing unbound them from it.
  for (const auto& w : k->writes()) EXPECT_EQ(w.find("/driver/unbind"), std::string::npos) << w;
  auto state = assign::load_state(*k);
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->bindings.size(), 3u);
  EXPECT_EQ(state->bindings[0].group, 6);
  EXPECT_EQ(state->bindings[0].original.driver, std::nullopt);
  EXPECT_FALSE(k->exists("/run/pcipass/journal.json"));
}

TEST_F(Sriov, WithoutBindAutoprobeStaysAndTheHostDriverTakesThem) {
  auto r = create(2, false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(k->writes(), std::vector<std::string>{kPf + "/sriov_numvfs <- 2"});
  EXPECT_EQ(k->link_basename("/sys/bus/pci/devices/0000:00:04.2/driver"), "nvme");
}

TEST_F(Sriov, ResizeGoesThroughZeroAndForgetsTheRemovedVfs) {
  ASSERT_TRUE(create(3).ok());
  size_t first = k->writes().size();
  auto r = create(2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::vector<std::string> later(k->writes().begin() + static_cast<long>(first), k->writes().end());
  ASSERT_GE(later.size(), 8u);
  // each old VF off vfio-pci (override cleared, unbound), then 0, then the new count
  EXPECT_EQ(later[6], kPf + "/sriov_numvfs <- 0");
  EXPECT_EQ(later[7], kPf + "/sriov_numvfs <- 2");
  EXPECT_EQ(r->removed.size(), 3u);
  auto state = assign::load_state(*k);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->bindings.size(), 2u);
  EXPECT_EQ(state->bindings[1].group, 7);
  EXPECT_FALSE(k->exists("/sys/bus/pci/devices/0000:00:04.3"));
}

TEST_F(Sriov, RefusesWhileAVmHoldsAVf) {
  ASSERT_TRUE(create(2).ok());
  k->add_process(4242, "qemu-system-x86", {"/dev/vfio/7"});
  std::string before = host_state(t);
  for (auto r : {create(3), remove()}) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(
        r.error().message.find("0000:00:04.2 (/dev/vfio/7 held by qemu-system-x86, pid 4242)"),
        std::string::npos)
        << r.error().message;
    EXPECT_EQ(r.error().fix, "shut the VM down (or stop pid 4242) first");
  }
  EXPECT_EQ(host_state(t), before);
}

// A PF whose directory cannot be listed has unknown VFs, not none: resizing or removing would pass
// over the VF a VM holds. `vf list` says so as a problem of the PF.
TEST_F(Sriov, APfThatCannotBeListedRefusesToResizeOrRemove) {
  ASSERT_TRUE(create(2).ok());
  k->add_process(4242, "qemu-system-x86", {"/dev/vfio/7"});
  k->deny_listing(kPf);
  std::string before = host_state(t);
  for (auto r : {create(3), remove()}) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message,
              "cannot list the VFs of 0000:00:04.0: opendir " + kPf + ": Permission denied");
    EXPECT_EQ(r.error().fix,
              "the kernel's SR-IOV attributes must be readable (run pcipass as root)");
  }
  EXPECT_EQ(host_state(t), before);
  auto list = nlohmann::json::parse(cli({"vf", "list", "--json"}).out);
  EXPECT_EQ(list["pfs"][0]["problems"][0],
            "cannot list the VFs of 0000:00:04.0: opendir " + kPf + ": Permission denied")
      << list;
}

// The PF went away after the inventory was read: that is not a permission problem.
TEST_F(Sriov, APfUnpluggedMidwaySaysItIsGone) {
  ASSERT_TRUE(create(2).ok());
  k->deny_listing(kPf, ENOENT);
  std::string before = host_state(t);
  for (auto r : {create(3), remove()}) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "no PCI device 0000:00:04.0 on this host any more");
    EXPECT_EQ(r.error().fix, "it was removed while pcipass ran; see `pcipass vf list`");
  }
  EXPECT_EQ(host_state(t), before);
}

// An autoprobe switch that could not be read was set to 0 all the same, and its old value, never
// captured, was not put back by a rollback or `undo`: the host's drivers no longer took new VFs.
TEST_F(Sriov, AnUnreadableAutoprobeIsRefusedBeforeAnyWrite) {
  k->deny_read(kPf + "/sriov_drivers_autoprobe", EIO);
  std::string before = host_state(t);
  size_t writes = k->writes().size();
  auto r = create(3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "open " + kPf + "/sriov_drivers_autoprobe: Input/output error");
  EXPECT_EQ(r.error().fix, "the kernel's SR-IOV attributes must be readable");
  EXPECT_EQ(k->writes().size(), writes);
  EXPECT_EQ(host_state(t), before);
}

TEST_F(Sriov, BadCountsAndPfsAreRefusedBeforeAnyWrite) {
  auto r = create(8);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "cannot make 8 VFs on 0000:00:04.0: its sriov_totalvfs is 7");
  sriov::CreateRequest other;
  other.pf = addr("0000:00:03.0");
  other.count = 1;
  auto nic = sriov::create(*k, other, env);
  ASSERT_FALSE(nic.ok());
  EXPECT_EQ(nic.error().message,
            "0000:00:03.0 is not an SR-IOV physical function (no sriov_totalvfs)");
  ASSERT_TRUE(k->write(kPf + "/driver/unbind", "0000:00:04.0"));
  size_t writes = k->writes().size();
  auto unbound = create(1);
  ASSERT_FALSE(unbound.ok());
  EXPECT_NE(unbound.error().message.find("has no driver"), std::string::npos);
  EXPECT_EQ(k->writes().size(), writes);
}

TEST_F(Sriov, DryRunWritesNothing) {
  std::string before = host_state(t);
  sriov::CreateRequest r;
  r.pf = addr("0000:00:04.0");
  r.count = 2;
  r.bind = "vfio-pci";
  r.dry_run = true;
  auto rep = sriov::create(*k, r, env);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_EQ(k->write_count(), 0);
  EXPECT_EQ(host_state(t), before);
  ASSERT_EQ(rep->created.size(), 2u);
  EXPECT_EQ(rep->created[1].str(), "0000:00:04.2");
  bool probe = false;
  for (const auto& s : rep->steps) probe |= s.text().find("drivers_probe") != std::string::npos;
  EXPECT_TRUE(probe);
}

// The SR-IOV host with `vfs` VFs of its PF 00:04.0 created and bound to vfio-pci (none: 0).
struct SriovRig {
  TempTree tree;
  FakeKernel kern;
  sriov::CreateRequest r;
  SriovRig(int vfs, const assign::Environment& env)
      : kern((sriov_host(tree), tree)),
        r{addr("0000:00:04.0"), vfs, std::string("vfio-pci"), false, false, nullptr} {
    sriov_kernel(kern);
    if (vfs) {
      EXPECT_TRUE(sriov::create(kern, r, env).ok());
    }
  }
};

// Writes of `create` from `vfs` existing VFs (bound, or none) to `n`, with a fault at each.
void fault_every_write(int vfs, int n, const assign::Environment& env) {
  int writes = 0;
  {
    SriovRig rig(vfs, env);
    int before = rig.kern.write_count();
    rig.r.count = n;
    ASSERT_TRUE(sriov::create(rig.kern, rig.r, env).ok());
    writes = rig.kern.write_count() - before;
  }
  ASSERT_GT(writes, 3);
  std::vector<std::pair<std::string, FakeKernel::Fault>> faults = {
      {"EIO", {EIO, false, false}},
      {"short write", {EIO, true, false}},
      {"EBUSY after acting", {EBUSY, false, true}},
  };
  for (const auto& [name, fault] : faults)
    for (int i = 1; i <= writes; ++i) {
      SCOPED_TRACE(name + " at write " + std::to_string(i) + " of " + std::to_string(writes));
      SriovRig rig(vfs, env);
      auto& [tree, kern, r] = rig;
      std::string before = host_state(tree), state = tree.read("/run/pcipass/state.json");
      kern.fail_write(kern.write_count() + i, fault);
      r.count = n;
      auto rep = sriov::create(kern, r, env);
      ASSERT_FALSE(rep.ok());
      EXPECT_NE(rep.error().fix.find("rolled back"), std::string::npos) << rep.error().fix;
      EXPECT_EQ(host_state(tree), before);
      EXPECT_EQ(tree.read("/run/pcipass/state.json"), state);
    }
}

TEST_F(Sriov, AFaultAtEveryWriteOfCreateLeavesThePfAsItWas) {
  fault_every_write(0, 3, env);
}

TEST_F(Sriov, AFaultAtEveryWriteOfAResizeLeavesThePfAsItWas) {
  fault_every_write(3, 2, env);
}

TEST_F(Sriov, RecoverAfterACrashAtEveryWriteOfAResize) {
  for (int n = 1; n <= 13; ++n) {
    SCOPED_TRACE("crash after write " + std::to_string(n));
    TempTree tree;
    sriov_host(tree);
    std::string before;
    {
      FakeKernel kern(tree);
      sriov_kernel(kern);
      sriov::CreateRequest r{
          addr("0000:00:04.0"), 3, std::string("vfio-pci"), false, false, nullptr};
      ASSERT_TRUE(sriov::create(kern, r, env).ok());
      before = host_state(tree);
      kern.crash_after(kern.write_count() + n);
      r.count = 2;
      auto rep = sriov::create(kern, r, env);
      if (rep.ok()) break;  // n is past the last write
      ASSERT_TRUE(kern.exists("/run/pcipass/journal.json"));
    }
    FakeKernel kern(tree);
    sriov_kernel(kern);
    auto rec = assign::recover(kern, env);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    EXPECT_EQ(host_state(tree), before);
  }
}

TEST_F(Sriov, RemoveTakesEveryVfAndForgetsThem) {
  ASSERT_TRUE(create(2).ok());
  auto r = remove();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(k->writes().back(), kPf + "/sriov_numvfs <- 0");
  EXPECT_FALSE(k->exists("/sys/bus/pci/devices/0000:00:04.1"));
  EXPECT_FALSE(k->exists("/dev/vfio/6"));
  EXPECT_TRUE(assign::load_state(*k)->bindings.empty());
  auto again = remove();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->steps.empty());
}

TEST_F(Sriov, AFaultAtEveryWriteOfRemoveLeavesTheVfsAsTheyWere) {
  for (int i = 1; i <= 7; ++i) {  // 2 VFs x (override, unbind) + numvfs, and past it
    SCOPED_TRACE("fault at write " + std::to_string(i));
    TempTree tree;
    sriov_host(tree);
    FakeKernel kern(tree);
    sriov_kernel(kern);
    ASSERT_TRUE(create(2, true, &kern).ok());
    std::string before = host_state(tree);
    kern.fail_write(kern.write_count() + i, FakeKernel::Fault{EBUSY, false, true});
    auto r = remove(&kern);
    if (r.ok()) break;
    EXPECT_EQ(host_state(tree), before);
  }
}

TEST_F(Sriov, ListShowsPfsAndVfsWithTheirGroupsAndVerdicts) {
  ASSERT_TRUE(create(2).ok());
  auto r = cli({"vf", "list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], "pcipass.vf-list/1");
  ASSERT_EQ(j["pfs"].size(), 1u);
  auto pf = j["pfs"][0];
  EXPECT_EQ(pf["address"], "0000:00:04.0");
  EXPECT_EQ(pf["driver"], "nvme");
  EXPECT_EQ(pf["total_vfs"], 7);
  EXPECT_EQ(pf["num_vfs"], 2);
  EXPECT_EQ(pf["drivers_autoprobe"], false);
  ASSERT_EQ(pf["vfs"].size(), 2u);
  EXPECT_EQ(pf["vfs"][1]["address"], "0000:00:04.2");
  EXPECT_EQ(pf["vfs"][1]["index"], 1);
  EXPECT_EQ(pf["vfs"][1]["driver"], "vfio-pci");
  EXPECT_EQ(pf["vfs"][1]["iommu_group"], 7);
  EXPECT_EQ(pf["vfs"][1]["passthrough"]["verdict"], "ready");
  auto text = cli({"vf", "list", "00:04.0"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("2 of 7 VFs, drivers_autoprobe off"), std::string::npos) << text.out;
}

TEST_F(Sriov, CliCreateAndRemove) {
  auto dry = cli({"vf", "create", "00:04.0", "2", "--bind", "vfio-pci", "--dry-run", "--json"});
  ASSERT_EQ(dry.status, 0) << dry.err;
  auto j = nlohmann::json::parse(dry.out);
  EXPECT_EQ(j["schema"], "pcipass.vf-create/1");
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(k->write_count(), 0);
  auto made = cli({"vf", "create", "00:04.0", "2", "--bind", "vfio-pci"});
  ASSERT_EQ(made.status, 0) << made.err;
  EXPECT_EQ(made.out,
            "0000:00:04.0: 2 VFs (was 0)\ncreated 0000:00:04.1\ncreated 0000:00:04.2\n"
            "bound 0000:00:04.1 to vfio-pci\nbound 0000:00:04.2 to vfio-pci\n");
  auto gone = cli({"vf", "remove", "00:04.0"});
  ASSERT_EQ(gone.status, 0) << gone.err;
  EXPECT_EQ(gone.out, "removed 0000:00:04.1\nremoved 0000:00:04.2\n");
  auto bad = cli({"vf", "create", "00:04.0", "9"});
  EXPECT_EQ(bad.status, 2) << bad.err;
}

}  // namespace
}  // namespace pcipass::test

namespace pcipass::test {
namespace {

// The netlink port: what a NIC PF's driver reports per VF lands on the VF of that index, and a
// failure to ask is a problem of the PF, not an error of the listing.
class FakeLinks : public sriov::VfLinkSource {
 public:
  Result<std::vector<sriov::VfLink>> vfs(const std::string& ifname) const override {
    asked.push_back(ifname);
    if (fail) return Error::io("RTM_GETLINK", ifname, EOPNOTSUPP);
    return std::vector<sriov::VfLink>{{1, "52:54:00:00:00:02", 100, 0, true, false}};
  }
  mutable std::vector<std::string> asked;
  bool fail = false;
};

TEST_F(Sriov, VfLinksComeFromThePfsInterface) {
  t.file(kBus + "/0000:00:04.0/net/enp0s4/operstate", "up\n");
  ASSERT_TRUE(create(2).ok());
  auto inv = Inventory::scan(*k, nullptr);
  ASSERT_TRUE(inv.ok());
  GroupMap groups = GroupMap::build(*inv);
  HostImpact impact = HostImpact::scan(*k, *inv);
  FakeLinks links;
  auto pfs = sriov::list(*k, *inv, groups, impact, addr("0000:00:04.0"), &links);
  ASSERT_TRUE(pfs.ok()) << pfs.error().message;
  ASSERT_EQ(pfs->size(), 1u);
  const auto& pf = pfs->front();
  EXPECT_EQ(links.asked, std::vector<std::string>{"enp0s4"});
  ASSERT_EQ(pf.vfs.size(), 2u);
  EXPECT_FALSE(pf.vfs[0].link);
  ASSERT_TRUE(pf.vfs[1].link);
  EXPECT_EQ(pf.vfs[1].link->mac, "52:54:00:00:00:02");
  EXPECT_EQ(pf.vfs[1].link->vlan, 100);
  links.fail = true;
  auto failed = sriov::list(*k, *inv, groups, impact, addr("0000:00:04.0"), &links);
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->front().problems.size(), 1u);
  EXPECT_FALSE(failed->front().vfs[1].link);
}

}  // namespace
}  // namespace pcipass::test
