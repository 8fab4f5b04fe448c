#include "cli/app.h"

#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string_view>

#include "cli/commands.h"
#include "sriov/netlink.h"

namespace pcipass::cli {

Context::Context(std::unique_ptr<HostFs> owned, HostFs* fs, assign::Environment env, Setup setup,
                 Term term, bool json, std::ostream& out, std::ostream& err)
    : term(term),
      json(json),
      out(out),
      err(err),
      owned_(std::move(owned)),
      fs_(fs ? fs : owned_.get()),
      env_(std::move(env)),
      setup_(std::move(setup)) {
  env_.process = setup_.process;  // one process view for the CLI and the library
  if (!env_.runner) {
    runner_ = setup_.process.live ? make_real_runner() : make_tree_runner(fs_->root());
    env_.runner = runner_.get();
  }
  if (!env_.loader) {
    loader_ = make_kmod_loader(setup_.process, *fs_);
    env_.loader = loader_.get();
  }
  // VF settings are the running kernel's: a --root tree has none.
  if (!env_.vf_links && setup_.process.live) {
    vf_links_ = std::make_unique<sriov::NetlinkVfLinks>();
    env_.vf_links = vf_links_.get();
  }
  if (!env_.sleep_ms) env_.sleep_ms = [p = setup_.process](int ms) { p.sleep(ms); };
  if (!env_.impact.ssh_connection)
    env_.impact.ssh_connection = ImpactOptions::for_process(setup_.process).ssh_connection;
}

Status Context::choose_pci_ids() {
  if (pci_ids_choice_) return {};
  auto local = make_real_host_fs("/");
  pci_ids_choice_ =
      TRY(pcipass::choose_pci_ids(*fs_, *local, setup_.pci_ids_option, setup_.system_pci_ids));
  return {};
}

const PciIdsChoice& Context::pci_ids_choice() {
  // Only an unusable --pci-ids fails, and run() refuses that before any command.
  if (!choose_pci_ids()) pci_ids_choice_ = PciIdsChoice{};
  return *pci_ids_choice_;
}

const PciIds& Context::ids() {
  if (!ids_) ids_ = std::make_unique<PciIds>(pci_ids_choice().local);
  return *ids_;
}

Json pci_ids_json(Context& ctx) {
  const auto& c = ctx.pci_ids_choice();
  return Json{{"path", or_null(c.path)}, {"source", pci_ids_source_id(c.source)}};
}

Json host_use_json(const HostUse& u) {
  Json j{{"kind", use_kind_id(u.kind)},
         {"name", u.name},
         {"detail", u.detail},
         {"critical", u.critical}};
  if (!u.addresses.empty()) j["addresses"] = u.addresses;
  return j;
}

const ModuleIndex& Context::modules() {
  if (!modules_) modules_ = ModuleIndex::open(*fs_);
  return *modules_;
}

Result<Inventory*> Context::inventory() {
  if (!inventory_) {
    auto inv = Inventory::scan(*fs_, &ids());
    if (!inv) {
      Error e = std::move(inv).error();
      if (e.fix.empty())
        e.fix = process().live ? "is sysfs mounted on /sys?"
                               : "is " + fs_->root() + " a captured host tree?";
      return e;
    }
    inventory_ = std::move(*inv);
    print_problems(*this, *inventory_);
  }
  return &*inventory_;
}

const GroupMap& Context::groups() {
  if (!groups_) groups_ = GroupMap::build(*inventory_);
  return *groups_;
}

// Warned once, by every command whose answer rests on it (list's and tree's verdicts too): an
// unreadable source or hidden processes make "uses nothing" a guess.
const HostImpact& Context::impact() {
  if (!impact_) {
    impact_ = HostImpact::scan(*fs_, *inventory_, env_.impact);
    print_impact_warnings(*this, *impact_);
  }
  return *impact_;
}

vm::Libvirt& Context::libvirt() {
  if (setup_.libvirt) return *setup_.libvirt;
  if (!libvirt_) libvirt_ = vm::make_libvirt();
  return *libvirt_;
}

CommandRunner& Context::local_runner() {
  if (setup_.local_runner) return *setup_.local_runner;
  if (!local_runner_) local_runner_ = make_real_runner();
  return *local_runner_;
}

vm::QmpConnector& Context::qmp() {
  if (setup_.qmp) return *setup_.qmp;
  if (!qmp_) qmp_ = vm::make_unix_connector();
  return *qmp_;
}

static const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kInvalid:
      return "invalid-argument";
    case ErrorKind::kNotFound:
      return "not-found";
    case ErrorKind::kRefused:
      return "refused";
    case ErrorKind::kState:
      return "state";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

std::string dump_json(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

void print_problems(Context& ctx, const Inventory& inv) {
  for (const auto& problem : inv.problems()) print_warning(ctx.err, ctx.term, problem);
}

void print_impact_warnings(Context& ctx, const HostImpact& impact) {
  for (const auto& p : impact.problems())
    print_warning(ctx.err, ctx.term, "cannot tell what the host uses devices for: " + p);
  size_t n = impact.hidden_processes();
  if (n == 0) return;
  print_warning(ctx.err, ctx.term,
                fmt::format("cannot see the open files of {} process{} of other users: devices "
                            "they hold are not listed (run as root to see them)",
                            n, n == 1 ? "" : "es"));
}

int fail(Context& ctx, const Error& e) {
  if (ctx.json) {
    Json j{{"error", {{"kind", error_kind_name(e.kind)}, {"message", e.describe()}}}};
    if (!e.path.empty()) j["error"]["path"] = e.path;
    if (e.err) j["error"]["errno"] = e.err;
    if (!e.fix.empty()) j["error"]["fix"] = e.fix;
    ctx.out << dump_json(j) << '\n';
  }
  print_error(ctx.err, ctx.term, e);
  return (e.kind == ErrorKind::kInvalid || e.kind == ErrorKind::kNotFound) ? kExitUsage
                                                                           : kExitFailure;
}

std::string short_address(const PciAddress& a, bool all_domain_zero) {
  std::string s = a.str();
  return all_domain_zero ? s.substr(5) : s;
}

std::string device_title(const Device& d) {
  std::string name = d.vendor_name.empty() ? fmt::format("Vendor {:04x}", d.vendor) : d.vendor_name;
  name += ' ';
  name += d.device_name.empty() ? fmt::format("Device {:04x}", d.device) : d.device_name;
  return name + " [" + d.id_pair() + "]";
}

static std::string hex4(uint16_t v) {
  return fmt::format("{:04x}", v);
}

Json reset_json(const ResetAssessment& r) {
  Json also = Json::array();
  for (const auto& a : r.bus_reset_also) also.push_back(a.str());
  return Json{{"verdict", reset_verdict_id(r.verdict)},
              {"methods", r.methods},
              {"methods_source", r.methods_from_kernel ? "kernel" : "config_space"},
              {"flr", r.flr},
              {"bus_reset_also_resets", also},
              {"known_bad_family", or_null(r.family)},
              {"reason", r.reason},
              {"fix", or_null(r.fix)}};
}

Json device_json(const Device& d) {
  Json j;
  j["address"] = d.address.str();
  j["vendor_id"] = hex4(d.vendor);
  j["device_id"] = hex4(d.device);
  j["subsystem_vendor_id"] = hex4(d.subsystem_vendor);
  j["subsystem_device_id"] = hex4(d.subsystem_device);
  j["revision"] = fmt::format("{:02x}", d.revision);
  j["class"] = fmt::format("{:06x}", d.class_code);
  j["kind"] = d.kind();
  j["vendor_name"] = d.vendor_name;
  j["device_name"] = d.device_name;
  j["class_name"] = d.class_name;
  j["driver"] = or_null(d.driver);
  j["iommu_group"] = or_null(d.iommu_group);
  j["bridge"] = d.is_bridge();
  j["boot_vga"] = d.boot_vga;
  Json parents = Json::array();
  for (const auto& p : d.parents) parents.push_back(p.str());
  j["parents"] = parents;
  j["physfn"] = d.physfn ? Json(d.physfn->str()) : Json(nullptr);
  Json vfs = Json::array();
  for (const auto& v : d.virtfns) vfs.push_back(v.str());
  j["virtfns"] = vfs;
  return j;
}

Json assessment_json(const Assessment& a) {
  Json companions = Json::array();
  for (const auto& c : a.companions) companions.push_back(c.str());
  return Json{{"verdict", verdict_id(a.verdict)}, {"reason", a.reason}, {"companions", companions}};
}

namespace {

std::string version_text() {
  return std::string("pcipass ") + PCIPASS_VERSION;
}

// --root names the machine pcipass runs on when it is "/" however spelled (//, /., a link to /).
bool live_root(const std::string& root) {
  std::error_code ec;
  auto canonical = std::filesystem::canonical(root, ec);
  return !ec && canonical == "/";
}

Setup make_setup(const Injected* injected, bool live, const std::string& pci_ids) {
  Setup s;
  if (injected && injected->process) s.process = injected->process(live);
  s.process.live = live;
  if (!pci_ids.empty()) s.pci_ids_option = std::filesystem::absolute(pci_ids).lexically_normal();
  s.system_pci_ids =
      injected && injected->system_pci_ids ? *injected->system_pci_ids : kSystemPciIds;
  if (injected) {
    s.qmp = injected->qmp;
    s.libvirt = injected->libvirt;
    s.local_runner = injected->local_runner;
  }
  return s;
}

// The command named on the command line: the first word that is neither an option nor the value
// of a global option. Only its options are built: building every subcommand's options was a
// third of the instructions of a short call (callgrind of `pcipass --version`), and under TCG
// start-up decides what one call costs (tests/vm/bench-calls).
const Command* named_command(int argc, char** argv) {
  static constexpr std::string_view kTakesValue[] = {"--root", "--pci-ids", "--color"};
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word.starts_with('-')) {
      if (std::find(std::begin(kTakesValue), std::end(kTakesValue), word) != std::end(kTakesValue))
        ++i;
      continue;
    }
    for (const auto& c : commands()) {
      if (word == c.name) return &c;
      for (const char* alias : c.aliases)
        if (word == alias) return &c;
    }
    return nullptr;
  }
  return nullptr;
}

}  // namespace

namespace {

// --json anywhere before "--": command-line errors, found before --json is parsed, are JSON too.
bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--json") return true;
  }
  return false;
}

// The first word that is not an option (or an option's value): the command as typed.
std::optional<std::string> command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--root" || a == "--pci-ids" || a == "--color") {
      ++i;
      continue;
    }
    if (a.starts_with('-')) continue;
    return std::string(a);
  }
  return std::nullopt;
}

std::string command_names() {
  std::string names;
  for (const auto& c : commands())
    if (!hidden_command(c)) names += std::string(names.empty() ? "" : ", ") + c.name;
  return names;
}

bool known_command(const std::string& word) {
  for (const auto& c : commands()) {
    if (word == c.name) return true;
    for (const char* alias : c.aliases)
      if (word == alias) return true;
  }
  return false;
}

// An option of this command line's app tree (the app's own and its parents'), by a word as
// typed ("--qmp", "-h"); none for a value, an "--opt=value" word or a cluster of short flags.
const CLI::Option* option_named(const CLI::App* app, std::string_view word) {
  if (!word.starts_with('-')) return nullptr;
  for (; app; app = app->get_parent())
    for (const CLI::Option* o : app->get_options())
      if (o->nonpositional() && o->check_name(std::string(word))) return o;
  return nullptr;
}

// CLI11, like getopt, takes the word after an option that needs a value, whatever that word is:
// `unplug ID --qmp --json` connected to a socket named "--json" and printed text, `bind DEV
// --owner --dry-run` lost its dry run. So one of the command's own options where a value belongs
// is a usage error, found before CLI11 parses; a value that is such a word can still be given
// whole (--qmp=--json). The words are followed down the subcommands as CLI11 does.
std::optional<Error> option_where_value_belongs(const CLI::App& root, int argc, char** argv) {
  const CLI::App* app = &root;
  std::string command = "pcipass";
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    std::string_view word = argv[i];
    if (const CLI::Option* o = option_named(app, word)) {
      if (o->get_items_expected_min() == 0 || i + 1 == argc) continue;
      if (std::string_view next = argv[++i]; option_named(app, next))
        return Error::invalid(
            fmt::format("{} needs a value, not the option '{}'", word, next),
            fmt::format("write its value after {} (`{} --help` says what it takes)", word,
                        command));
      continue;
    }
    auto sub =
        app->get_subcommands([&](const CLI::App* a) { return a->check_name(std::string(word)); });
    if (!sub.empty()) app = sub.front(), command += " " + sub.front()->get_name();
  }
  return std::nullopt;
}

// A usage error found before a Context exists: JSON on stdout with --json, words on stderr.
int usage_error(bool json, std::ostream& out, std::ostream& err, const Error& e) {
  if (json)
    out << dump_json(Json{
               {"error", {{"kind", "invalid-argument"}, {"message", e.message}, {"fix", e.fix}}}})
        << '\n';
  print_error(err, Term{}, e);
  return kExitUsage;
}

}  // namespace

bool hidden_command(const Command& c) {
  return std::string_view(c.name) == "completion";
}

void add_globals(CLI::App& app, Globals& g) {
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text());
  app.add_option("--root", g.root, "Read (and write) the host below DIR instead of /")
      ->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  app.add_option("--pci-ids", g.pci_ids,
                 "Names from this pci.ids file. Explicit beats implicit: it wins over the host "
                 "tree's own (DIR/usr/share/misc/pci.ids, DIR/usr/share/hwdata/pci.ids), which "
                 "wins over this machine's /usr/share/misc/pci.ids")
      ->option_text("FILE")
      ->check(CLI::ExistingFile);
  app.add_flag("--json", g.json, "Machine-readable output (docs/json.md)");
  app.add_option("--color", g.color, "Colour: auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
}

CLI::App* add_command(CLI::App& app, const Command& c, Args& args, bool& json) {
  CLI::App* sub = app.add_subcommand(c.name, c.help);
  for (const char* alias : c.aliases) sub->alias(alias);
  if (hidden_command(c)) sub->group("");
  sub->add_flag("--json", json, "Machine-readable output (docs/json.md)");
  c.setup(*sub, args);
  return sub;
}

bool needs_libvirt(int argc, char** argv) {
  auto word = command_word(argc, argv);
  if (!word) return false;
  if (*word == "attach" || *word == "detach") return true;
  if (*word != "plan") return false;
  for (int i = 1; i < argc; ++i)
    if (std::string_view a = argv[i]; a == "--domain" || a.starts_with("--domain=")) return true;
  return false;
}

static int run_unguarded(int argc, char** argv, std::ostream& out, std::ostream& err,
                         const Injected* injected) {
  bool wanted_json = wants_json(argc, argv);
  if (auto word = command_word(argc, argv); word && !known_command(*word))
    return usage_error(wanted_json, out, err,
                       Error::invalid(fmt::format("unknown command '{}'", *word),
                                      "use one of: " + command_names() +
                                          " (`pcipass --help` says what each does)"));
  // --json takes no value: CLI11 would take `--json=0` after a --json for "no JSON", while the
  // usage errors found before parsing follow the words (wants_json) and print JSON.
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
    if (std::string_view a = argv[i]; a.starts_with("--json="))
      return usage_error(wanted_json, out, err,
                         Error::invalid(fmt::format("--json takes no value, got '{}'", a),
                                        "write --json alone for JSON, or leave it out for text"));
  CLI::App app{"pcipass: PCI(e) passthrough for Linux KVM hosts", "pcipass"};
  Globals g;
  add_globals(app, g);
  std::string &root = g.root, &color = g.color, &pci_ids = g.pci_ids;
  bool& json = g.json;

  Args args;
  const Command* chosen = nullptr;
  std::vector<std::pair<CLI::App*, const Command*>> subs;
  const Command* named = named_command(argc, argv);  // none: help, version or an error for all
  for (const auto& c : commands()) {
    if (named && &c != named) continue;
    subs.emplace_back(add_command(app, c, args, json), &c);
  }
  if (auto e = option_where_value_belongs(app, argc, argv))
    return usage_error(wanted_json, out, err, *e);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    out << version_text() << '\n';
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    if (wanted_json)
      return usage_error(true, out, err,
                         Error::invalid(e.what(),
                                        "`pcipass --help` and `pcipass COMMAND --help` "
                                        "list the options"));
    std::ostringstream o, eo;
    int code = app.exit(e, o, eo);
    out << o.str();
    err << eo.str();
    return code == 0 ? kExitOk : kExitUsage;
  }
  for (auto& [sub, c] : subs)
    if (sub->parsed()) chosen = c;
  Setup setup = make_setup(injected, live_root(root), pci_ids);
  Term term = detect_term(STDOUT_FILENO, color, setup.process);
  Context ctx(make_real_host_fs(root), injected ? injected->fs : nullptr,
              injected ? injected->env : assign::Environment{}, std::move(setup), term, json, out,
              err);
  // A FIFO or a device given as --pci-ids would block libpci: refuse it before any command runs.
  if (auto s = ctx.choose_pci_ids(); !s) return fail(ctx, s.error());
  return chosen->run(ctx, args);
}

int run(int argc, char** argv, std::ostream& out, std::ostream& err, const Injected* injected) {
  // Each cause of an exception is fixed where it starts; this is the last line, so that nothing
  // that slips through aborts with a bare "terminate called" and a cut-off document.
  auto internal = [&](const std::string& what) {
    Error e;
    e.message = "internal error: " + what;
    e.fix =
        "this is a bug in pcipass: please report it with the command line and, if you can, "
        "a snapshot (`pcipass snapshot -o host.tar.gz`)";
    if (wants_json(argc, argv))
      out << dump_json(
                 Json{{"error", {{"kind", "internal"}, {"message", e.message}, {"fix", e.fix}}}})
          << '\n';
    print_error(err, Term{}, e);
    return kExitInternal;
  };
  try {
    return run_unguarded(argc, argv, out, err, injected);
  } catch (const std::exception& e) {
    return internal(e.what());
  } catch (...) {
    return internal("an unknown exception");
  }
}

}  // namespace pcipass::cli
