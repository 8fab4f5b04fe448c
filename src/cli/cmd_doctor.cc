// pcipass doctor: why a VM did not start (docs/vm.md, "doctor"). The library (src/doctor) reads
// the log and the host and explains; this file picks the mode and prints.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <filesystem>

#include "cli/commands.h"
#include "doctor/doctor.h"

namespace pcipass::cli {
namespace {

// Nothing known matched: the lines looked at were shown (docs/vm.md).
constexpr int kExitUnexplained = 3;

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

Result<doctor::Request> request(const Args& a) {
  int given = !a.message.empty() + a.doctor_domain.has_value() + a.log.has_value();
  if (given > 1)
    return Error::invalid("doctor takes one of MESSAGE, --domain DOMAIN and --log FILE",
                          "give the message, or the domain, or the log");
  doctor::Request r;
  if (!a.message.empty()) r = {doctor::Mode::kMessage, join_words(a.message), {}, {}};
  if (a.doctor_domain) r = {doctor::Mode::kDomain, {}, {}, *a.doctor_domain};
  if (a.log) {
    // A relative path is the user's, from where they stand; the library takes host paths.
    std::string path =
        a.log->empty() ? *a.log : std::filesystem::absolute(*a.log).lexically_normal().string();
    r = {doctor::Mode::kLog, {}, path, {}};
  }
  return r;
}

Json finding_json(const doctor::Finding& f) {
  Json evidence = Json::array();
  for (const auto& e : f.evidence) evidence.push_back({{"source", e.source}, {"detail", e.detail}});
  return {{"cause", doctor::cause_id(f.cause)},
          {"confirmed", f.confirmed},
          {"message", f.line},
          {"where", f.where},
          {"device", f.device ? Json(f.device->str()) : Json(nullptr)},
          {"explanation", f.explanation},
          {"evidence", evidence},
          {"fix", f.fix}};
}

Json report_json(const doctor::Report& r) {
  Json findings = Json::array();
  for (const auto& f : r.findings) findings.push_back(finding_json(f));
  return {{"schema", "pcipass.doctor/1"},
          {"source", r.source},
          {"first_line", r.first_line},
          {"truncated", r.truncated},
          {"kernel_log", or_null(r.kernel_log)},
          {"explained", r.explained()},
          {"findings", findings},
          {"looked_at", r.looked_at},
          {"fix", r.explained() ? Json(nullptr) : Json(r.fix)}};
}

void print_finding(Context& ctx, const doctor::Finding& f) {
  print_line(ctx.out,
             fmt::format("{}{}: {}", doctor::cause_id(f.cause),
                         f.confirmed ? "" : " (not shown by this host now)", f.explanation));
  print_line(ctx.out, fmt::format("  message   {}: {}", f.where, f.line));
  if (f.device) print_line(ctx.out, "  device    " + f.device->str());
  for (const auto& e : f.evidence)
    print_line(ctx.out, fmt::format("  evidence  {}: {}", e.source, e.detail));
  print_line(ctx.out, "  fix       " + f.fix);
}

void print_report(Context& ctx, const doctor::Report& r) {
  std::string from = r.first_line > 1 ? fmt::format(", from line {} (the last start)", r.first_line)
                                      : std::string();
  std::string source = r.source == "command line" ? "the message given" : r.source;
  print_line(ctx.out, fmt::format("read {}{}; kernel log: {}", source, from,
                                  r.kernel_log.empty() ? "none readable" : r.kernel_log));
  for (const auto& f : r.findings) {
    ctx.out << '\n';
    print_finding(ctx, f);
  }
  if (r.explained()) return;
  print_line(ctx.out, "no known cause; the lines looked at:");
  for (const auto& l : r.looked_at) print_line(ctx.out, "  " + l);
  print_line(ctx.out, "fix: " + r.fix);
}

}  // namespace

void setup_doctor(CLI::App& app, Args& a) {
  app.add_option("MESSAGE", a.message, "The error as the VM manager printed it (quote it)");
  app.add_option_function<std::string>(
         "--domain", [&a](const std::string& v) { a.doctor_domain = v; },
         "Read libvirt's log of this domain (/var/log/libvirt/qemu/DOMAIN.log)")
      ->option_text("DOMAIN");
  app.add_option_function<std::string>(
         "--log", [&a](const std::string& v) { a.log = v; },
         "Read this QEMU or libvirt log (its last start)")
      ->option_text("FILE");
}

int run_doctor(Context& ctx, const Args& a) {
  auto req = request(a);
  if (!req) return fail(ctx, req.error());
  auto report = doctor::diagnose(ctx.fs(), *req);
  if (!report) return fail(ctx, report.error());
  if (ctx.json)
    ctx.out << dump_json(report_json(*report)) << '\n';
  else
    print_report(ctx, *report);
  return report->explained() ? kExitOk : kExitUnexplained;
}

}  // namespace pcipass::cli
