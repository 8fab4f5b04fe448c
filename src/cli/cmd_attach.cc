// pcipass attach / detach: host devices into (out of) a libvirt domain through its C API
// (src/vm/attach.h does the work; this file parses options and prints).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "doctor/doctor.h"
#include "vm/attach.h"

namespace pcipass::cli {
namespace {

void add_domain_options(CLI::App& app, Args& a, const char* verb) {
  app.add_option("DOMAIN", a.domain, "The libvirt domain's name")->required();
  add_devices(app, a, true);
  app.add_flag("--live", a.live, fmt::format("{} the running guest", verb));
  app.add_flag("--config", a.config,
               fmt::format("{} the persistent definition (next start)", verb));
  app.add_flag("--with-group", a.with_group, "Every endpoint of the devices' IOMMU groups too");
  app.add_option_function<std::string>(
         "--connect,-c", [&a](const std::string& v) { a.connect = v; },
         "libvirt URI (default: LIBVIRT_DEFAULT_URI, else qemu:///system)")
      ->option_text("URI");
  app.add_flag("--dry-run", a.dry_run, "Read the domain, print the XML and flags; change nothing");
}

std::string flags_text(vm::AffectFlags f) {
  if (f.live && f.config) return "live and config";
  return f.live ? "live" : "config";
}

Json report_json(const char* schema, const vm::DomainReport& r) {
  Json calls = Json::array(), budgets = Json::array();
  for (const auto& c : r.calls)
    calls.push_back({{"address", c.address.str()}, {"xml", c.xml}, {"done", c.done}});
  for (const auto& b : r.budgets)
    budgets.push_back({{"affect", vm::affect_name(b.affect)},
                       {"machine", vm::machine_name(b.machine)},
                       {"free", b.free},
                       {"needed", b.needed},
                       {"remaining", b.remaining},
                       {"libvirt_adds", b.libvirt_adds}});
  return {{"schema", schema},
          {"dry_run", r.dry_run},
          {"uri", r.uri},
          {"domain", r.domain},
          {"state", vm::domain_state_name(r.state)},
          {"flags", {{"live", r.flags.live}, {"config", r.flags.config}}},
          {"calls", calls},
          {"budgets", budgets},
          {"warnings", r.warnings}};
}

void print_report(Context& ctx, const vm::DomainReport& r, const char* call, const char* done) {
  for (const auto& w : r.warnings) print_warning(ctx.err, ctx.term, w);
  if (r.dry_run) {
    print_line(ctx.out, fmt::format("dry run: pcipass would call {} on domain {} ({}, {}) with "
                                    "flags {}, once per element:",
                                    call, r.domain, r.uri, vm::domain_state_name(r.state),
                                    flags_text(r.flags)));
    for (const auto& c : r.calls) ctx.out << c.xml;
    print_line(ctx.out, "nothing was changed");
  } else {
    for (const auto& c : r.calls)
      print_line(ctx.out, fmt::format("{} {} {} domain {} ({})", done, c.address.str(),
                                      std::string(done) == "attached" ? "to" : "from", r.domain,
                                      flags_text(r.flags)));
  }
  for (const auto& b : r.budgets)
    print_line(ctx.out, fmt::format("domain {} ({}, {}): {}", r.domain, vm::affect_name(b.affect),
                                    vm::machine_name(b.machine), b.describe()));
}

Result<vm::DomainRequest> domain_request(Context& ctx, const Args& a) {
  Inventory* inv = TRY(ctx.inventory());
  vm::DomainRequest req;
  req.uri = vm::libvirt_uri(a.connect, ctx.process());
  req.domain = a.domain;
  req.devices = TRY(resolve_devices(*inv, a));
  req.with_group = a.with_group;
  req.force = a.force;
  req.flags = {a.live, a.config};
  req.dry_run = a.dry_run;
  req.xml = {a.managed == "yes", a.rom_bar == "off", a.rom_file};
  return req;
}

// libvirt's refusal, when the doctor's catalog knows it (IOMMU off, group not viable, managed='no'
// on a host driver, ...), gets the doctor's fix: checked on this host and kept in one place.
Error with_doctors_fix(Context& ctx, Error e) {
  doctor::Report d = doctor::diagnose_text(ctx.fs(), {e.message, "libvirt's error"},
                                           doctor::read_kernel_log(ctx.fs()));
  if (d.explained() && !d.findings.front().fix.empty()) e.fix = d.findings.front().fix;
  return e;
}

int finish(Context& ctx, const Result<vm::DomainReport>& r, const char* schema, const char* call,
           const char* done) {
  if (!r) return fail(ctx, with_doctors_fix(ctx, r.error()));
  if (ctx.json)
    ctx.out << dump_json(report_json(schema, *r)) << '\n';
  else
    print_report(ctx, *r, call, done);
  return kExitOk;
}

}  // namespace

void setup_attach(CLI::App& app, Args& a) {
  add_domain_options(app, a, "Attach to");
  app.add_flag("--force", a.force, "As bind --force: give the VM a device the host needs");
  app.add_option("--managed", a.managed,
                 "yes (default): libvirt binds the devices to vfio-pci at VM start; no: they are "
                 "bound already (pcipass bind --persist)")
      ->check(CLI::IsMember({"yes", "no"}));
}

int run_attach(Context& ctx, const Args& a) {
  auto req = domain_request(ctx, a);
  if (!req) return fail(ctx, req.error());
  Inventory* inv = *ctx.inventory();
  auto r = vm::attach(ctx.libvirt(), *inv, ctx.groups(), ctx.impact(), *req);
  return finish(ctx, r, "pcipass.attach/1", "virDomainAttachDeviceFlags", "attached");
}

void setup_detach(CLI::App& app, Args& a) {
  add_domain_options(app, a, "Detach from");
}

int run_detach(Context& ctx, const Args& a) {
  auto req = domain_request(ctx, a);
  if (!req) return fail(ctx, req.error());
  Inventory* inv = *ctx.inventory();
  auto r = vm::detach(ctx.libvirt(), *inv, ctx.groups(), *req);
  return finish(ctx, r, "pcipass.detach/1", "virDomainDetachDeviceFlags", "detached");
}

}  // namespace pcipass::cli
