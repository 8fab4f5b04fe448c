#include "impact/topology.h"

#include <fmt/format.h>

#include <set>

namespace pcipass {

namespace {

// Length of the UTF-8 sequence at text[i] when it is well formed (no overlong forms, surrogates
// or code points past U+10FFFF), else 0.
size_t utf8_sequence(std::string_view text, size_t i, uint32_t& cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  unsigned char c = byte(0);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Code points that reorder or hide text (C1 controls, bidirectional overrides and isolates).
bool hidden_control(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

// The inside of a DOT string: a backslash is written "\\" so that the visible escapes below, and
// a name's own backslashes, reach the picture as text rather than as Graphviz's \n, \N, \G.
std::string dot_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    size_t n = utf8_sequence(text, i, cp);
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (n == 0) {
      out += fmt::format("\\\\x{:02x}", c);
      ++i;
    } else if (n == 1 && (c < 0x20 || c == 0x7f)) {
      out += fmt::format("\\\\x{:02x}", c);
      ++i;
    } else if (n == 1 && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (hidden_control(cp)) {
      out += fmt::format("\\\\u{:04x}", cp);
      i += n;
    } else {
      out.append(text, i, n);
      i += n;
    }
  }
  return out;
}

// A label of several lines: each line escaped, joined by DOT's centred line break.
std::string dot_label(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\\n" : "") + dot_escape(lines[i]);
  return out + "\"";
}

std::string bus_id(uint32_t domain, int bus) {
  return fmt::format("pci{:04x}:{:02x}", domain, bus);
}

class DotWriter {
 public:
  DotWriter(const Inventory& inv, const GroupMap& groups,
            const std::map<PciAddress, Verdict>& verdicts)
      : inv_(inv), groups_(groups), verdicts_(verdicts) {}

  std::string write() {
    header();
    buses();
    for (const auto& g : groups_.groups()) cluster(g);
    for (const auto& d : inv_.devices())
      if (!drawn_.count(d.address)) node(d, "  ");
    edges();
    legend();
    out_ += "}\n";
    return std::move(out_);
  }

 private:
  void header() {
    size_t n = inv_.devices().size(), g = groups_.groups().size();
    std::string title =
        fmt::format("PCI topology: {} device{}, {}", n, n == 1 ? "" : "s",
                    g ? fmt::format("{} IOMMU group{}", g, g == 1 ? "" : "s") : "IOMMU off");
    out_ += "digraph pcipass {\n";
    out_ += "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=12, labelloc=t, ";
    out_ += "nodesep=0.15, ranksep=0.5, label=" + dot_quote(title) + "];\n";
    out_ += "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=9, ";
    out_ += "fillcolor=\"#ffffff\", color=\"#555555\"];\n";
    out_ += "  edge [color=\"#888888\", arrowhead=none];\n";
  }

  // Root buses: what the devices without a parent bridge (or whose parent is not listed) hang
  // from.
  void buses() {
    std::set<std::pair<uint32_t, int>> roots;
    for (const auto& d : inv_.devices())
      if (!parent_of(d)) roots.insert({d.address.domain, d.address.bus});
    for (const auto& [domain, bus] : roots)
      out_ += fmt::format("  {} [shape=folder, fillcolor=\"#eeeeee\"];\n",
                          dot_quote(bus_id(domain, bus)));
  }

  const Device* parent_of(const Device& d) const {
    return d.parents.empty() ? nullptr : inv_.find(d.parents.back());
  }

  void cluster(const IommuGroup& g) {
    size_t blocking = g.blocking().size();
    std::string label = fmt::format(
        "IOMMU group {}: {}", g.id,
        blocking ? fmt::format("{} endpoint{} on host drivers", blocking, blocking == 1 ? "" : "s")
                 : std::string("viable"));
    out_ += fmt::format("  subgraph \"cluster_group_{}\" {{\n", g.id);
    out_ += "    label=" + dot_quote(label) + ";\n";
    out_ += "    style=\"rounded,dashed\"; color=\"#4a6fa5\"; fontsize=10;\n";
    for (const Device* d : g.devices) node(*d, "    ");
    out_ += "  }\n";
  }

  void node(const Device& d, const char* indent) {
    drawn_.insert(d.address);
    std::string cls = d.class_name.empty() ? d.kind() : d.class_name;
    std::string ids = "[" + d.id_pair() + "] " + d.driver.value_or("no driver");
    std::vector<std::string> lines = {d.address.str(), cls};
    if (!d.device_name.empty()) lines.push_back(d.device_name);
    lines.push_back(ids);
    out_ += indent + dot_quote(d.address.str()) + " [label=" + dot_label(lines);
    auto v = verdicts_.find(d.address);
    if (v != verdicts_.end()) {
      out_ += fmt::format(", fillcolor=\"{}\"", verdict_colour(v->second));
      if (v->second == Verdict::kHostCritical) out_ += ", color=\"#cc0000\", penwidth=3";
    }
    out_ += "];\n";
  }

  void edges() {
    for (const auto& d : inv_.devices()) {
      const Device* p = parent_of(d);
      std::string from = p ? p->address.str() : bus_id(d.address.domain, d.address.bus);
      out_ += "  " + dot_quote(from) + " -> " + dot_quote(d.address.str()) + ";\n";
    }
  }

  // One sample node per verdict, stacked, so the colours explain themselves in the picture.
  void legend() {
    static constexpr Verdict kAll[] = {Verdict::kReady,          Verdict::kNeedsGroup,
                                       Verdict::kGroupNotViable, Verdict::kNoIommu,
                                       Verdict::kHostCritical,   Verdict::kBridge};
    out_ += "  subgraph cluster_legend {\n";
    out_ += "    label=\"verdicts\"; style=\"rounded\"; color=\"#999999\"; fontsize=10;\n";
    for (Verdict v : kAll) {
      std::string label = verdict_label(v);
      if (v == Verdict::kHostCritical) label += " (red border)";
      out_ += fmt::format("    \"legend_{}\" [label={}, fillcolor=\"{}\"", verdict_id(v),
                          dot_quote(label), verdict_colour(v));
      if (v == Verdict::kHostCritical) out_ += ", color=\"#cc0000\", penwidth=3";
      out_ += "];\n";
    }
    for (size_t i = 0; i + 1 < std::size(kAll); ++i)
      out_ += fmt::format("    \"legend_{}\" -> \"legend_{}\" [style=invis];\n",
                          verdict_id(kAll[i]), verdict_id(kAll[i + 1]));
    out_ += "  }\n";
  }

  const Inventory& inv_;
  const GroupMap& groups_;
  const std::map<PciAddress, Verdict>& verdicts_;
  std::set<PciAddress> drawn_;
  std::string out_;
};

}  // namespace

std::string dot_quote(std::string_view text) {
  return "\"" + dot_escape(text) + "\"";
}

const char* verdict_colour(Verdict v) {
  switch (v) {
    case Verdict::kReady:
      return "#b6e3a8";
    case Verdict::kNeedsGroup:
      return "#fff0a0";
    case Verdict::kGroupNotViable:
      return "#f8c08a";
    case Verdict::kNoIommu:
      return "#d9d9d9";
    case Verdict::kHostCritical:
      return "#f4a6a6";
    case Verdict::kBridge:
      return "#dce8f8";
  }
  return "#ffffff";
}

std::string topology_dot(const Inventory& inv, const GroupMap& groups,
                         const std::map<PciAddress, Verdict>& verdicts) {
  return DotWriter(inv, groups, verdicts).write();
}

Result<std::string> render_svg(CommandRunner& runner, const std::string& dot) {
  Invocation cmd;
  cmd.argv = {"dot", "-Tsvg"};
  cmd.environment = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"LC_ALL", "C"}};
  cmd.stdin_data = dot;
  cmd.timeout_ms = 2 * 60 * 1000;
  auto r = runner.run(cmd);
  if (!r) {
    Error e = std::move(r).error();
    if (e.kind != ErrorKind::kNotFound) return e;
    return Error::state("SVG needs Graphviz's dot, which is not installed (" + e.message + ")",
                        "apt install graphviz, or write DOT with --format dot and render it "
                        "where Graphviz is");
  }
  if (!r->ok())
    return CommandRunner::failure(cmd, *r).with_fix(
        "this is a bug in pcipass's DOT output: please report it with `pcipass tree --format "
        "dot` attached");
  return std::move(r->out);
}

}  // namespace pcipass
