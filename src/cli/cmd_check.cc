// pcipass check: host readiness, one line per requirement, exit status from the worst.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "check/check.h"
#include "cli/commands.h"
#include "persist/persist.h"
#include "setup/boot_check.h"

namespace pcipass::cli {

static Style status_style(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass:
      return Style::kGood;
    case CheckStatus::kWarn:
      return Style::kWarn;
    case CheckStatus::kFail:
      return Style::kBad;
  }
  return Style::kPlain;
}

int run_check(Context& ctx, const Args&) {
  CheckReport report = run_checks(ctx.fs(), ctx.modules());
  // What setup configured for boot, where the host has it (docs/checks.md).
  for (auto& r : setup::check_boot_setup(ctx.fs(), ctx.modules(), ctx.env().runner))
    report.results.push_back(std::move(r));
  for (auto& r : persist::persist_checks(ctx.fs())) report.results.push_back(std::move(r));
  CheckStatus worst = report.worst();
  int counts[3] = {0, 0, 0};
  for (const auto& r : report.results) counts[static_cast<int>(r.status)]++;
  if (ctx.json) {
    Json checks = Json::array();
    for (const auto& r : report.results)
      checks.push_back({{"id", r.id},
                        {"title", r.title},
                        {"status", check_status_name(r.status)},
                        {"detail", r.detail},
                        {"fix", or_null(r.fix)}});
    ctx.out << dump_json(Json{
                   {"schema", "pcipass.check/1"},
                   {"checks", checks},
                   {"worst", check_status_name(worst)},
                   {"summary", {{"pass", counts[0]}, {"warn", counts[1]}, {"fail", counts[2]}}}})
            << '\n';
  } else {
    size_t title_width = 0;
    for (const auto& r : report.results)
      title_width = std::max(title_width, display_width(r.title));
    for (const auto& r : report.results) {
      std::string line = fmt::format(
          "{}  {:<{}}  {}", ctx.term.paint(status_style(r.status), check_status_name(r.status)),
          r.title, title_width, printable(r.detail));
      ctx.out << line << '\n';
      if (!r.fix.empty())
        ctx.out << "      " << ctx.term.paint(Style::kBold, "fix:") << ' ' << printable(r.fix)
                << '\n';
    }
    ctx.out << fmt::format(
        "{} passed, {} warnings, {} failed: {}\n", counts[0], counts[1], counts[2],
        worst == CheckStatus::kFail   ? "this host cannot pass devices through yet"
        : worst == CheckStatus::kWarn ? "passthrough should work; read the warnings"
                                      : "ready for passthrough");
  }
  if (worst == CheckStatus::kFail) return kExitFailure;
  return worst == CheckStatus::kWarn ? kExitWarn : kExitOk;
}

}  // namespace pcipass::cli
