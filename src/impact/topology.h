// The PCI hierarchy as a picture: a Graphviz DOT graph with IOMMU groups as clusters, fill colours
// for verdicts and host-critical devices outlined, and SVG from Graphviz's `dot` (tree --format).
// Every string from the host (names, drivers) is quoted by dot_quote: no name can end a string,
// start an attribute or hand Graphviz bytes that are not UTF-8.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "host/runner.h"
#include "impact/verdict.h"
#include "pci/groups.h"
#include "pci/inventory.h"

namespace pcipass {

// `text` as a DOT double-quoted string, quotes included: '"' and '\' escaped; control characters,
// DEL, C1 controls, bidirectional overrides and bytes that are not UTF-8 written as visible
// escapes ("\x1b", "\u202e"), as `printable` does for terminals; other UTF-8 unchanged.
std::string dot_quote(std::string_view text);

// The graph: one node per root bus and per device, an edge from each parent (bridge or root bus)
// to what sits below it, each IOMMU group a cluster, a legend of the verdicts' colours. A device
// missing from `verdicts` is drawn without a verdict. Deterministic: the same inventory gives the
// same bytes (goldens).
std::string topology_dot(const Inventory& inv, const GroupMap& groups,
                         const std::map<PciAddress, Verdict>& verdicts);

// The fill colour of a verdict in the graph and its legend.
const char* verdict_colour(Verdict v);

// `dot` as SVG, from Graphviz's `dot -Tsvg` run through `runner`; an error naming the graphviz
// package when the program is missing, and dot's own message when it fails.
Result<std::string> render_svg(CommandRunner& runner, const std::string& dot);

}  // namespace pcipass
