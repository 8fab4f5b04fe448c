#include "host/cmdline.h"

#include <algorithm>

namespace pcipass {

namespace {

bool has_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), is_cmdline_space);
}

// One parameter starting at `pos` (no leading space), as the kernel's next_arg() splits it.
// Advances `pos` past the parameter and the white space after it.
KernelCmdline::Param next_param(std::string_view text, size_t& pos) {
  bool quoted = false;
  if (text[pos] == '"') {
    ++pos;
    quoted = true;
  }
  bool in_quote = quoted;
  size_t start = pos, len = 0, equals = 0;
  for (; start + len < text.size(); ++len) {
    char c = text[start + len];
    if (is_cmdline_space(c) && !in_quote) break;
    if (equals == 0 && c == '=') equals = len;  // '=' at 0 does not count, as in the kernel
    if (c == '"') in_quote = !in_quote;
  }
  pos = start + len;
  while (pos < text.size() && is_cmdline_space(text[pos])) ++pos;

  std::string_view word = text.substr(start, len);
  bool last_quote_gone = false;  // the kernel strips the word's final quote at most once
  KernelCmdline::Param p;
  if (equals == 0) {
    p.first = std::string(word);
  } else {
    p.first = std::string(word.substr(0, equals));
    std::string_view v = word.substr(equals + 1);
    if (!v.empty() && v.front() == '"') {
      v.remove_prefix(1);
      if (word.back() == '"' && !v.empty()) {
        v.remove_suffix(1);
        last_quote_gone = true;
      } else if (v.empty()) {
        last_quote_gone = true;  // `key="`: the opening quote was also the last character
      }
    }
    p.second = std::string(v);
  }
  if (quoted && !last_quote_gone && !word.empty() && word.back() == '"') {
    std::string& s = p.second ? *p.second : p.first;
    if (!s.empty()) s.pop_back();
  }
  return p;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

KernelCmdline KernelCmdline::parse(std::string_view text) {
  KernelCmdline out;
  size_t pos = 0;
  while (pos < text.size() && is_cmdline_space(text[pos])) ++pos;
  while (pos < text.size()) {
    Param p = next_param(text, pos);
    if (out.separator_) {
      out.init_args_.push_back(p.second ? p.first + "=" + *p.second : p.first);
      continue;
    }
    if (!p.second && p.first == "--") {
      out.separator_ = true;
      continue;
    }
    if (p.first.empty() && !p.second) continue;  // a stray `""` means nothing
    out.params_.push_back(std::move(p));
  }
  return out;
}

bool KernelCmdline::key_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.find('.') == std::string_view::npos) return a == b;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] == '-' ? '_' : a[i];
    char y = b[i] == '-' ? '_' : b[i];
    if (x != y) return false;
  }
  return true;
}

bool KernelCmdline::has(std::string_view key) const {
  return last(key) != nullptr;
}

const KernelCmdline::Param* KernelCmdline::last(std::string_view key) const {
  for (auto it = params_.rbegin(); it != params_.rend(); ++it)
    if (key_equal(it->first, key)) return &*it;
  return nullptr;
}

std::optional<std::string> KernelCmdline::get(std::string_view key) const {
  const Param* p = last(key);
  if (!p) return std::nullopt;
  return p->second;
}

std::vector<std::string> KernelCmdline::values(std::string_view key) const {
  std::vector<std::string> out;
  for (const Param& p : params_)
    if (p.second && key_equal(p.first, key)) out.push_back(*p.second);
  return out;
}

std::vector<std::string> KernelCmdline::options(std::string_view key) const {
  std::vector<std::string> out;
  for (const std::string& v : values(key)) {
    size_t b = 0;
    while (b <= v.size()) {
      size_t e = v.find(',', b);
      if (e == std::string::npos) e = v.size();
      if (e > b) out.push_back(v.substr(b, e - b));
      b = e + 1;
    }
  }
  return out;
}

void KernelCmdline::set(std::string_view key, std::optional<std::string> value) {
  auto first = std::find_if(params_.begin(), params_.end(),
                            [&](const Param& p) { return key_equal(p.first, key); });
  if (first == params_.end()) {
    params_.emplace_back(std::string(key), std::move(value));
    return;
  }
  first->second = std::move(value);
  auto keep_until = std::remove_if(first + 1, params_.end(),
                                   [&](const Param& p) { return key_equal(p.first, key); });
  params_.erase(keep_until, params_.end());
}

void KernelCmdline::add(std::string key, std::optional<std::string> value) {
  params_.emplace_back(std::move(key), std::move(value));
}

size_t KernelCmdline::remove(std::string_view key) {
  size_t before = params_.size();
  std::erase_if(params_, [&](const Param& p) { return key_equal(p.first, key); });
  return before - params_.size();
}

size_t KernelCmdline::remove(std::string_view key, std::string_view value) {
  size_t before = params_.size();
  std::erase_if(params_, [&](const Param& p) {
    return key_equal(p.first, key) && p.second && *p.second == value;
  });
  return before - params_.size();
}

std::string KernelCmdline::format(const Param& p) {
  if (auto s = spell(p)) return *s;
  return p.first + (p.second ? "=" + *p.second : std::string());
}

std::optional<std::string> KernelCmdline::spell(const Param& p, bool last) {
  std::string whole = p.first + (p.second ? "=" + *p.second : std::string());
  std::vector<std::string> candidates = {whole};
  if (p.second) candidates.push_back(p.first + "=\"" + *p.second + "\"");
  candidates.push_back("\"" + whole + "\"");
  // Read back with a parameter after it unless it is the last: an unclosed quote (`x="a"b`)
  // swallows what follows.
  const Param follower{"x", std::nullopt};
  for (const auto& c : candidates) {
    auto back = parse(last ? c : c + " x").params();
    if (last ? back.size() == 1 && back[0] == p
             : back.size() == 2 && back[0] == p && back[1] == follower)
      return c;
  }
  return std::nullopt;
}

Result<std::string> KernelCmdline::str() const {
  std::string out;
  auto append = [&out](const std::string& s) {
    if (!out.empty()) out += ' ';
    out += s;
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    const Param& p = params_[i];
    auto s = spell(p, i + 1 == params_.size() && !separator_);
    if (!s)
      return Error::invalid(
          "kernel parameter '" + format(p) +
              "' cannot be written on a command line: the kernel's quoting cannot carry it",
          "drop the quote or the white space from its name");
    append(*s);
  }
  if (separator_) {
    append("--");
    for (const std::string& a : init_args_) append(has_space(a) ? "\"" + a + "\"" : a);
  }
  return out;
}

std::optional<bool> parse_kernel_bool(std::string_view s) {
  if (s.empty()) return std::nullopt;
  switch (s[0]) {
    case 'y':
    case 'Y':
    case 't':
    case 'T':
    case '1':
      return true;
    case 'n':
    case 'N':
    case 'f':
    case 'F':
    case '0':
      return false;
    case 'o':
    case 'O':
      if (s.size() > 1 && (s[1] == 'n' || s[1] == 'N')) return true;
      if (s.size() > 1 && (s[1] == 'f' || s[1] == 'F')) return false;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

IommuCmdline iommu_settings(const KernelCmdline& cmdline) {
  IommuCmdline out;
  auto items = [](const std::optional<std::string>& v) {
    std::vector<std::string> r;
    if (!v) return r;
    size_t b = 0;
    while (b <= v->size()) {
      size_t e = v->find(',', b);
      if (e == std::string::npos) e = v->size();
      if (e > b) r.push_back(v->substr(b, e - b));
      b = e + 1;
    }
    return r;
  };
  // In order, so that later parameters override earlier ones where the kernel lets them.
  for (const auto& [key, value] : cmdline.params()) {
    if (key == "intel_iommu") {
      for (const std::string& o : items(value)) {
        if (starts_with(o, "on"))
          out.intel_iommu = true;
        else if (starts_with(o, "off"))
          out.intel_iommu = false;
      }
    } else if (key == "amd_iommu") {
      for (const std::string& o : items(value))
        if (starts_with(o, "off")) out.amd_iommu_off = true;
    } else if (key == "iommu") {
      for (const std::string& o : items(value)) {
        if (starts_with(o, "off"))
          out.iommu_off = true;
        else if (starts_with(o, "pt"))
          out.iommu_pt = true;
        else if (starts_with(o, "nopt"))
          out.iommu_pt = false;
      }
    } else if (KernelCmdline::key_equal(key, "iommu.passthrough")) {
      if (value)
        if (auto b = parse_kernel_bool(*value)) out.iommu_pt = *b;
    } else if (key == "intremap") {
      for (const std::string& o : items(value)) {
        if (starts_with(o, "on")) {
          out.intremap_off = false;
          out.intremap_off_param.clear();
        } else if (starts_with(o, "off")) {
          out.intremap_off = true;
          out.intremap_off_param = KernelCmdline::format({key, value});
        }
      }
    } else if (key == "nointremap" && !value) {
      out.intremap_off = true;
      out.intremap_off_param = "nointremap";
    }
  }
  return out;
}

bool is_cmdline_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace pcipass
