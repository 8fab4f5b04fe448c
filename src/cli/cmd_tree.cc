// pcipass tree: the PCI hierarchy as bridges see it, with IOMMU groups.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <map>
#include <set>

#include "cli/commands.h"
#include "impact/topology.h"

namespace pcipass::cli {
namespace {

class TreePrinter {
 public:
  TreePrinter(Context& ctx, const Inventory& inv) : ctx_(ctx), inv_(inv) {}

  // A device is printed once: a tree whose parent links loop (an alias directory below its own
  // device, a crafted snapshot) would otherwise recurse until the stack overflows.
  bool first_visit(const Device& d) { return visited_.insert(&d).second; }

  Json node_json(const Device& d) {
    Json j{{"address", d.address.str()},
           {"kind", d.kind()},
           {"driver", or_null(d.driver)},
           {"iommu_group", or_null(d.iommu_group)},
           {"name", device_title(d)}};
    Json kids = Json::array();
    for (const Device* c : inv_.children(d.address))
      if (first_visit(*c)) kids.push_back(node_json(*c));
    j["children"] = kids;
    return j;
  }

  void print(const Device& d, const std::string& prefix, bool last) {
    std::string label = fmt::format("{} {}", d.address.str(), d.kind());
    std::string group = d.iommu_group ? fmt::format("[group {}]", *d.iommu_group) : "";
    std::string tail = printable(d.driver.value_or("-") + "  " + device_title(d));
    std::string line = prefix + (last ? "└─ " : "├─ ") + ctx_.term.paint(Style::kBold, label) +
                       " " + ctx_.term.paint(Style::kWarn, group) + (group.empty() ? "" : " ") +
                       tail;
    std::string plain = prefix + "└─ " + label + " " + group + " " + tail;
    if (ctx_.term.width > 0 && display_width(plain) > static_cast<size_t>(ctx_.term.width))
      line = truncate_to(line, ctx_.term.width + (line.size() - plain.size()));
    ctx_.out << line << '\n';
    std::vector<const Device*> kids;
    for (const Device* c : inv_.children(d.address))
      if (first_visit(*c)) kids.push_back(c);
    for (size_t i = 0; i < kids.size(); ++i)
      print(*kids[i], prefix + (last ? "   " : "│  "), i + 1 == kids.size());
  }

 private:
  Context& ctx_;
  const Inventory& inv_;
  std::set<const Device*> visited_;
};

// --format dot|svg: the graph from the library, SVG through Graphviz's dot on this machine (it
// reads only the graph, so it runs under --root too).
int print_picture(Context& ctx, const Inventory& inv, const std::string& format) {
  const GroupMap& groups = ctx.groups();
  Assessor assessor(groups, ctx.impact(), inv.iommu_groups_present());
  std::map<PciAddress, Verdict> verdicts;
  for (const auto& d : inv.devices()) verdicts[d.address] = assessor(d, false).verdict;
  std::string dot = topology_dot(inv, groups, verdicts);
  if (format == "dot") {
    ctx.out << dot;
    return kExitOk;
  }
  auto svg = render_svg(ctx.local_runner(), dot);
  if (!svg) return fail(ctx, svg.error());
  ctx.out << *svg;
  return kExitOk;
}

}  // namespace

void setup_tree(CLI::App& app, Args& a) {
  app.add_option("--format", a.tree_format,
                 "text (default): the tree as lines; dot: a Graphviz graph, IOMMU groups as "
                 "clusters, verdicts as colours; svg: that graph drawn by Graphviz's dot")
      ->check(CLI::IsMember({"text", "dot", "svg"}));
}

int run_tree(Context& ctx, const Args& a) {
  if (ctx.json && a.tree_format != "text")
    return fail(ctx, Error::invalid(
                         "--json and --format " + a.tree_format + " both choose the output's form",
                         "use one of them"));
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  if (a.tree_format != "text") return print_picture(ctx, **inv, a.tree_format);
  std::map<std::pair<uint32_t, int>, std::vector<const Device*>> roots;
  for (const auto& d : (*inv)->devices())
    if (d.parents.empty()) roots[{d.address.domain, d.address.bus}].push_back(&d);
  TreePrinter p(ctx, **inv);
  if (ctx.json) {
    Json buses = Json::array();
    for (const auto& [key, devs] : roots) {
      Json kids = Json::array();
      for (const Device* d : devs)
        if (p.first_visit(*d)) kids.push_back(p.node_json(*d));
      buses.push_back(
          {{"bus", fmt::format("{:04x}:{:02x}", key.first, key.second)}, {"children", kids}});
    }
    ctx.out << dump_json(Json{{"schema", "pcipass.tree/1"},
                              {"root_buses", buses},
                              {"pci_ids", pci_ids_json(ctx)}})
            << '\n';
    return kExitOk;
  }
  for (const auto& [key, devs] : roots) {
    ctx.out << ctx.term.paint(Style::kBold, fmt::format("pci{:04x}:{:02x}", key.first, key.second))
            << '\n';
    for (const Device* d : devs) p.first_visit(*d);
    for (size_t i = 0; i < devs.size(); ++i) p.print(*devs[i], "", i + 1 == devs.size());
  }
  ctx.out << fmt::format("{} devices under {} root bus{}\n", (*inv)->devices().size(), roots.size(),
                         roots.size() == 1 ? "" : "es");
  return kExitOk;
}

}  // namespace pcipass::cli
