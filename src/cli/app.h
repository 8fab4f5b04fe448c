// The pcipass command line: global options, the command table, and the shared context.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "assign/assign.h"
#include "cli/format.h"
#include "host/context.h"
#include "host/host_fs.h"
#include "host/module_loader.h"
#include "host/modules.h"
#include "host/runner.h"
#include "impact/impact.h"
#include "impact/reset.h"
#include "impact/verdict.h"
#include "pci/groups.h"
#include "pci/ids.h"
#include "pci/inventory.h"
#include "util/json.h"
#include "vm/libvirt_port.h"
#include "vm/qmp.h"

namespace CLI {
class App;
}

namespace pcipass::cli {

// Every option any command takes; each command's setup registers the ones it uses.
struct Args {
  std::vector<std::string> devices;
  std::string class_filter, vendor_filter, driver_filter;
  std::string group_filter;  // --group as typed: group_filter() checks it
  bool group_given = false;
  std::string output;
  std::optional<std::string> desired_file;  // apply FILE
  std::string driver = "vfio-pci";
  std::string owner;
  bool with_group = false, force = false, dry_run = false;
  bool vfio = false, list = false;      // setup --vfio, undo --list
  std::string id;                       // undo ID
  std::vector<std::string> early_bind;  // setup --early-bind DEVICE...
  bool selinux = false;                 // setup --selinux
  std::string initramfs;                // setup --initramfs NAME
  bool persist = false;                 // bind/release --persist
  bool boot = false;                    // apply --boot
  bool iommu = false, iommu_pt = false, hide_boot_framebuffer = false, undo = false;  // setup
  std::string boot_loader;                                                            // setup
  // xml and qemu-args (cmd_vm.cc)
  std::string managed = "yes", rom_bar = "on", rom_file, machine = "q35", format = "qemu";
  std::optional<std::string> node;
  bool x_vga = false, pci_assign = false;
  std::string tree_format = "text";  // tree --format text|dot|svg
  std::string completion_shell;      // completion bash|zsh

  // vf (cmd_vf.cc): list, create or remove; create's N, --bind DRIVER, --no-autoprobe
  std::string vf_action;
  int vf_count = 0;
  // vf set: INDEX as typed (sriov::parse_vf_index checks it), each setting as typed, and the
  // hidden --ifname (netdevsim's VFs are no PCI devices).
  std::string vf_index;
  std::optional<std::string> vf_mac, vf_vlan, vf_spoofchk, vf_trust, vf_ifname;
  std::string vf_bind;
  bool no_autoprobe = false;

  // mdev (cmd_mdev.cc): types, list, create or remove; PARENT, TYPE, --uuid or UUID, --auto,
  // list --defined
  std::string mdev_action, mdev_parent, mdev_type, mdev_uuid;
  bool mdev_auto = false, mdev_defined = false;

  std::string qmp;     // hotplug/unplug --qmp SOCKET
  int timeout_s = 30;  // unplug --timeout

  // attach/detach DOMAIN (cmd_attach.cc), plan --domain
  std::string domain;
  std::optional<std::string> connect;
  bool live = false, config = false;
  // doctor (cmd_doctor.cc)
  std::vector<std::string> message;
  std::optional<std::string> doctor_domain, log;  // --domain, --log
};

// What a caller may put in place of the real host and process: main() passes the process's
// facts; tests pass a sysfs double, a fake module loader, their own environment, and a missing
// system pci.ids.
struct Injected {
  HostFs* fs = nullptr;  // every read and write, instead of make_real_host_fs(--root)
  assign::Environment env;
  // The process once --root is known (live: the root is "/"): main() passes
  // make_process_context(environ, live). Unset: an empty environment, uid 0, the real clock.
  std::function<ProcessContext(bool live)> process;
  // The machine's own pci.ids, the last choice for names; unset: kSystemPciIds.
  std::optional<std::string> system_pci_ids;
  // How hotplug/unplug reach --qmp SOCKET; unset: a real unix socket.
  vm::QmpConnector* qmp = nullptr;
  // How attach/detach and plan --domain reach libvirt; unset: its C API (vm::make_libvirt).
  vm::Libvirt* libvirt = nullptr;
  // Programs that only transform pcipass's own output (Graphviz's dot for tree --format svg),
  // run on this machine even under --root; unset: the real runner.
  CommandRunner* local_runner = nullptr;
};

// What run() decided from the command line, beside the host view.
struct Setup {
  ProcessContext process;
  std::optional<std::string> pci_ids_option;  // --pci-ids, made absolute
  std::string system_pci_ids;
  vm::QmpConnector* qmp = nullptr;        // Injected::qmp
  vm::Libvirt* libvirt = nullptr;         // Injected::libvirt
  CommandRunner* local_runner = nullptr;  // Injected::local_runner
};

// What a command run needs, built lazily so `check` on a broken /sys still works.
class Context {
 public:
  Context(std::unique_ptr<HostFs> owned, HostFs* fs, assign::Environment env, Setup setup,
          Term term, bool json, std::ostream& out, std::ostream& err);

  HostFs& fs() { return *fs_; }
  const assign::Environment& env() const { return env_; }
  const ProcessContext& process() const { return setup_.process; }
  const Setup& setup() const { return setup_; }
  // Where names come from (--pci-ids, the tree's, the system's, none), for --json; the choice
  // fails only for an unusable --pci-ids.
  Status choose_pci_ids();
  const PciIdsChoice& pci_ids_choice();
  const PciIds& ids();
  const ModuleIndex& modules();
  Result<Inventory*> inventory();  // with names and details-free devices
  const GroupMap& groups();        // requires inventory() to have succeeded
  const HostImpact& impact();      // likewise
  vm::QmpConnector& qmp();         // the injected one, or a unix socket connector
  vm::Libvirt& libvirt();          // the injected one, or libvirt's C API
  // Runs programs on this machine whatever --root says: only for ones that touch no host state
  // (dot). The injected one, or the real runner.
  CommandRunner& local_runner();

  Term term;
  bool json;
  std::ostream& out;
  std::ostream& err;

 private:
  std::unique_ptr<HostFs> owned_;
  HostFs* fs_;
  assign::Environment env_;
  Setup setup_;
  std::unique_ptr<ModuleLoader> loader_;
  std::unique_ptr<CommandRunner> runner_;
  std::unique_ptr<CommandRunner> local_runner_;
  std::optional<PciIdsChoice> pci_ids_choice_;
  std::unique_ptr<PciIds> ids_;
  std::unique_ptr<ModuleIndex> modules_;
  std::optional<Inventory> inventory_;
  std::optional<GroupMap> groups_;
  std::optional<HostImpact> impact_;
  std::unique_ptr<vm::QmpConnector> qmp_;
  std::unique_ptr<vm::Libvirt> libvirt_;
  std::unique_ptr<change::VfLinkPort> vf_links_;  // netlink, on a live host
};

struct Command {
  const char* name;
  std::vector<const char*> aliases;
  const char* help;
  std::function<void(CLI::App&, Args&)> setup;
  std::function<int(Context&, const Args&)> run;
};

const std::vector<Command>& commands();
// Commands left out of `pcipass --help` and of the man pages' list: `completion`, which prints the
// shells' scripts for the packages that install them.
bool hidden_command(const Command& c);

// The options before the command (--root, --pci-ids, --json, --color, --version).
struct Globals {
  std::string root = "/", color = "auto", pci_ids;
  bool json = false;
};
void add_globals(CLI::App& app, Globals& g);
// `c` as a subcommand of `app`, with its aliases, --json and its own options.
CLI::App* add_command(CLI::App& app, const Command& c, Args& args, bool& json);

// Whether the command typed reaches libvirt (attach, detach, plan --domain): the static executable
// hands those to its dynamically linked twin (main.cc, docs/vm.md).
bool needs_libvirt(int argc, char** argv);

// Entry point: parses argv, runs one command, returns the exit status. Never calls exit().
int run(int argc, char** argv, std::ostream& out, std::ostream& err,
        const Injected* injected = nullptr);

// Exit statuses (docs/cli.md).
inline constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitWarn = 3;

// Reports an error in the chosen form and returns its exit status.
int fail(Context& ctx, const Error& e);
// Exit status when something escaped every check (sysexits' EX_SOFTWARE): "internal error".
inline constexpr int kExitInternal = 70;

// Every JSON document pcipass prints goes through this: bytes that are not UTF-8 (a process or
// driver name, an argument) become U+FFFD instead of aborting the process (docs/json.md).
std::string dump_json(const Json& j, int indent = 2);
// The inventory's problems (entries skipped, values out of range, a malformed pci.ids) as
// warnings on stderr.
void print_problems(Context& ctx, const Inventory& inv);
// What the impact scan could not see: files it could not read, processes of other users.
void print_impact_warnings(Context& ctx, const HostImpact& impact);

// JSON shapes shared by several commands (docs/json.md).
Json device_json(const Device& d);
// The reset verdict of show and plan (docs/json.md, "reset").
Json reset_json(const ResetAssessment& r);
// {"path": ..., "source": "option"|"tree"|"system"|"none"}: the "pci_ids" key of the documents
// that carry names.
Json pci_ids_json(Context& ctx);
// docs/json.md's HOST_USE less its "address": {"kind", "name", "detail", "critical",
// "addresses"?}. show lists them under their device; plan puts the address first.
Json host_use_json(const HostUse& u);
Json assessment_json(const Assessment& a);
std::string short_address(const PciAddress& a, bool all_domain_zero);
std::string device_title(
    const Device& d);  // "NVIDIA Corporation GP104 [GeForce GTX 1080] [10de:1b80]"

}  // namespace pcipass::cli
