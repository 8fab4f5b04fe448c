#include "boot/words.h"

#include <fmt/format.h>

#include <algorithm>

namespace pcipass::boot {

std::string apply_splices(const std::string& text, std::vector<Splice> splices) {
  // Last first, so earlier offsets stay valid; at one offset an insertion goes before a removal
  // that ends there.
  std::stable_sort(splices.begin(), splices.end(), [](const Splice& a, const Splice& b) {
    return a.begin != b.begin ? a.begin > b.begin : a.end > b.end;
  });
  std::string out = text;
  for (const auto& s : splices) out.replace(s.begin, s.end - s.begin, s.text);
  return out;
}

namespace {

bool same_key(const KernelCmdline::Param& a, const KernelCmdline::Param& b) {
  return KernelCmdline::key_equal(a.first, b.first);
}

std::optional<KernelCmdline::Param> one_param(const std::string& text) {
  KernelCmdline c = KernelCmdline::parse(text);
  if (c.params().size() != 1 || c.has_init_separator()) return std::nullopt;
  return c.params().front();
}

bool has_exactly(const KernelCmdline& line, const KernelCmdline::Param& p) {
  for (const auto& q : line.params())
    if (same_key(q, p) && q.second == p.second) return true;
  return false;
}

}  // namespace

std::string describe(const Edit& e) {
  std::vector<std::string> has, lacks;
  for (const auto& w : e.want) has.push_back(KernelCmdline::format(w));
  for (const auto& a : e.also) has.push_back(KernelCmdline::format(a));
  for (const auto& d : e.drop) lacks.push_back(KernelCmdline::format(d));
  std::string out = fmt::format("{}", fmt::join(has, " "));
  if (!lacks.empty())
    out += (out.empty() ? "no " : ", no ") + fmt::format("{}", fmt::join(lacks, ", no "));
  return out;
}

bool unwanted(const Edit& e, const KernelCmdline::Param& p) {
  for (const auto& d : e.drop)
    if (same_key(d, p) && (!d.second || d.second == p.second)) return true;
  for (const auto& w : e.want)
    if (same_key(w, p) && w.second != p.second) return true;
  return false;
}

bool satisfied(const Edit& e, const KernelCmdline& line) {
  for (const auto& p : line.params())
    if (unwanted(e, p)) return false;
  for (const auto& w : e.want) {
    const auto* last = line.last(w.first);
    if (!last || last->second != w.second) return false;
  }
  for (const auto& a : e.also)
    if (!has_exactly(line, a)) return false;
  return true;
}

std::vector<std::string> to_remove(const Edit& e, const KernelCmdline& line) {
  std::vector<std::string> out;
  for (const auto& p : line.params())
    if (unwanted(e, p)) out.push_back(KernelCmdline::format(p));
  return out;
}

std::vector<std::string> to_add(const Edit& e, const KernelCmdline& line) {
  std::vector<std::string> out;
  for (const auto& w : e.want) {
    const auto* last = line.last(w.first);
    if (!last || last->second != w.second) out.push_back(KernelCmdline::format(w));
  }
  for (const auto& a : e.also)
    if (!has_exactly(line, a)) out.push_back(KernelCmdline::format(a));
  return out;
}

bool fits(const std::string& text, char quote) {
  switch (quote) {
    case '\'':
      return text.find('\'') == std::string::npos;
    case '"':
      return text.find_first_of("\"$`\\") == std::string::npos;
    default:
      return text.find_first_of(" \t\r\n\"'$`\\;&|<>()#*?[]~{}") == std::string::npos;
  }
}

Result<std::vector<std::vector<Splice>>> plan_splices(const std::vector<Value>& values,
                                                      size_t target, const Edit& e,
                                                      const std::string& where) {
  std::vector<std::vector<Splice>> out(values.size());
  std::vector<bool> placed(e.want.size(), false);
  std::vector<KernelCmdline::Param> kept;  // what the line holds after the splices
  for (size_t v = 0; v < values.size(); ++v) {
    size_t consumed = 0;  // removals of this value never overlap
    for (const Word& w : values[v].words) {
      auto p = one_param(w.text);
      if (!p) continue;
      if (!unwanted(e, *p)) {
        kept.push_back(*p);
        continue;
      }
      if (!w.editable)
        return Error::refused(
            fmt::format("cannot remove {} from {}: it is written with quotes, escapes or a "
                        "variable inside it",
                        w.text, where),
            fmt::format("remove {} from {} by hand, then run pcipass again", w.text, where));
      // A contrary value is replaced where it stands, when the wanted text fits its quoting.
      auto want = std::find_if(e.want.begin(), e.want.end(),
                               [&](const auto& x) { return same_key(x, *p); });
      if (want != e.want.end() && !placed[want - e.want.begin()]) {
        std::string text = KernelCmdline::format(*want);
        if (fits(text, w.quote)) {
          placed[want - e.want.begin()] = true;
          out[v].push_back({w.begin, w.end, text});
          kept.push_back(*want);
          consumed = w.end;
          continue;
        }
      }
      size_t begin = w.begin, end = w.end;
      if (w.space_before < w.begin && std::max(w.space_before, consumed) < w.begin)
        begin = std::max(w.space_before, consumed);
      else
        end = w.space_after;
      out[v].push_back({begin, end, ""});
      consumed = end;
    }
  }
  std::vector<std::string> add;
  for (size_t i = 0; i < e.want.size(); ++i) {
    if (placed[i]) continue;
    bool has = false;
    for (const auto& k : kept)
      if (same_key(k, e.want[i])) has = k.second == e.want[i].second;  // the last one counts
    if (!has) add.push_back(KernelCmdline::format(e.want[i]));
  }
  for (const auto& a : e.also)
    if (std::none_of(kept.begin(), kept.end(), [&](const auto& k) { return k == a; }) &&
        std::find(add.begin(), add.end(), KernelCmdline::format(a)) == add.end())
      add.push_back(KernelCmdline::format(a));
  if (add.empty()) return out;
  const Value& t = values[target];
  std::string text;
  for (const auto& a : add) text += (text.empty() ? "" : " ") + a;
  if (!t.can_insert || !fits(text, t.quote))
    return Error::refused(
        fmt::format("cannot add {} to {}: the value is not a plain quoted string", text, where),
        fmt::format("add {} to {} by hand, then run pcipass again", text, where));
  // A removal may reach past the insertion point (the last word removed with the blanks after
  // it): insert where that removal starts, the same place once it is applied (a fuzz finding:
  // an insertion inside a removal lost bytes of the new text).
  size_t at = t.insert_at;
  for (const Splice& s : out[target])
    if (s.begin < at && at < s.end) at = s.begin;
  out[target].push_back({at, at, t.insert_prefix + text + t.insert_suffix});
  return out;
}

}  // namespace pcipass::boot
