#include "boot/grub_defaults.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace pcipass::boot {

namespace {

bool name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool blank(char c) {
  return c == ' ' || c == '\t';
}
// What ends a shell word: /bin/sh's blanks and newline (not \v or \f, which are literal there).
bool shell_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Reads one shell word from `i` (an assignment's value) into `a`; `i` ends after it.
class WordReader {
 public:
  WordReader(const std::string& t, Assignment& a) : t_(t), a_(a) {}

  void read(size_t& i) {
    while (i < t_.size() && !ends_word(i)) {
      char c = t_[i];
      if (c == '\\') {
        if (i + 1 >= t_.size()) return push(c, i++, '\0');
        if (t_[i + 1] != '\n') push(t_[i + 1], i + 1, '\0');  // backslash-newline: nothing
        i += 2;
      } else if (c == '\'') {
        single(i);
      } else if (c == '"') {
        dbl(i);
      } else if (c == '$') {
        dollar(i, '\0');
      } else if (c == '`') {
        a_.opaque = true;
        ++i;
      } else {
        push(c, i++, '\0');
      }
    }
  }

 private:
  bool ends_word(size_t i) const {
    char c = t_[i];
    if (c == '\r') return i + 1 >= t_.size() || t_[i + 1] == '\n';
    return shell_space(c) || c == ';' || c == '&' || c == '|' || c == '<' || c == '>' || c == '(' ||
           c == ')';
  }
  void push(char c, size_t raw, char q) { a_.pieces.push_back({c, {}, raw, q}); }
  void single(size_t& i) {
    size_t close = t_.find('\'', i + 1);
    if (close == std::string::npos) {
      a_.opaque = true;
      i = t_.size();
      return;
    }
    for (size_t k = i + 1; k < close; ++k) push(t_[k], k, '\'');
    i = close + 1;
  }
  void dbl(size_t& i) {
    ++i;
    while (i < t_.size() && t_[i] != '"') {
      char c = t_[i];
      if (c == '\\' && i + 1 < t_.size() &&
          std::string_view("$`\"\\\n").find(t_[i + 1]) != std::string_view::npos) {
        if (t_[i + 1] != '\n') push(t_[i + 1], i + 1, '"');
        i += 2;
      } else if (c == '$') {
        dollar(i, '"');
      } else if (c == '`') {
        a_.opaque = true;
        ++i;
      } else {
        push(c, i++, '"');
      }
    }
    if (i >= t_.size())
      a_.opaque = true;
    else
      ++i;
  }
  void dollar(size_t& i, char q) {
    size_t start = i;
    if (i + 1 < t_.size() && t_[i + 1] == '{') {
      size_t close = t_.find('}', i + 2);
      std::string name = close == std::string::npos ? "" : t_.substr(i + 2, close - i - 2);
      if (name.empty() || !name_start(name[0]) ||
          !std::all_of(name.begin(), name.end(), name_char)) {
        a_.opaque = true;  // ${x:-y}, ${#x}...
        i = close == std::string::npos ? t_.size() : close + 1;
        return;
      }
      a_.pieces.push_back({'\0', name, start, q});
      i = close + 1;
    } else if (i + 1 < t_.size() && name_start(t_[i + 1])) {
      size_t e = i + 1;
      while (e < t_.size() && name_char(t_[e])) ++e;
      a_.pieces.push_back({'\0', t_.substr(i + 1, e - i - 1), start, q});
      i = e;
    } else if (i + 1 < t_.size() && t_[i + 1] == '(') {
      a_.opaque = true;
      i = t_.size();  // cannot follow $( ... ) without a shell
    } else {
      push('$', i++, q);
    }
  }

  const std::string& t_;
  Assignment& a_;
};

size_t line_end(const std::string& t, size_t i) {
  size_t nl = t.find('\n', i);
  return nl == std::string::npos ? t.size() : nl + 1;
}

}  // namespace

ShellFile ShellFile::parse(std::string path, std::string text) {
  ShellFile f{std::move(path), std::move(text), {}};
  const std::string& t = f.text;
  size_t i = 0;
  while (i < t.size()) {
    size_t line = i;
    while (i < t.size() && blank(t[i])) ++i;
    if (t.compare(i, 7, "export ") == 0) {
      i += 7;
      while (i < t.size() && blank(t[i])) ++i;
    }
    size_t n = i;
    if (n < t.size() && name_start(t[n])) {
      while (n < t.size() && name_char(t[n])) ++n;
      if (n < t.size() && t[n] == '=') {
        Assignment a;
        a.name = t.substr(i, n - i);
        a.line_begin = line;
        a.value_begin = n + 1;
        i = n + 1;
        WordReader(t, a).read(i);
        a.value_end = i;
        f.assignments.push_back(std::move(a));
      }
    }
    i = line_end(t, std::max(i, line));
  }
  return f;
}

std::map<std::string, std::optional<std::string>> evaluate(const std::vector<ShellFile>& files) {
  std::map<std::string, std::optional<std::string>> env;
  for (const auto& f : files)
    for (const auto& a : f.assignments) {
      std::optional<std::string> v = std::string();
      for (const auto& p : a.pieces) {
        if (p.var.empty()) {
          v->push_back(p.c);
          continue;
        }
        auto it = env.find(p.var);
        if (it != env.end() && !it->second) v.reset();
        if (!v) break;
        if (it != env.end()) *v += *it->second;
      }
      if (a.opaque) v.reset();
      env[a.name] = v;
    }
  return env;
}

Value value_words(const ShellFile& f, const Assignment& a) {
  Value v;
  const auto& ps = a.pieces;
  auto literal_space = [&](size_t k) { return ps[k].var.empty() && is_cmdline_space(ps[k].c); };
  size_t k = 0;
  while (k < ps.size()) {
    if (literal_space(k) || !ps[k].var.empty()) {
      ++k;
      continue;
    }
    size_t s = k;
    Word w;
    w.begin = ps[s].raw;
    w.quote = ps[s].quote;
    // Split as the kernel will split the line: white space inside double quotes does not.
    for (bool quoted = false;
         k < ps.size() && ps[k].var.empty() && (quoted || !is_cmdline_space(ps[k].c));) {
      if (ps[k].c == '"') quoted = !quoted;
      w.text.push_back(ps[k].c);
      if (k > s && (ps[k].raw != ps[k - 1].raw + 1 || ps[k].quote != w.quote)) w.editable = false;
      ++k;
    }
    w.end = ps[k - 1].raw + 1;
    if ((s > 0 && !ps[s - 1].var.empty()) || (k < ps.size() && !ps[k].var.empty()))
      w.editable = false;  // glued to a variable: the parameter is more than these bytes
    // The white space around it, in the same quoting and contiguous with it.
    w.space_before = w.begin;
    for (size_t b = s; b > 0 && literal_space(b - 1) && ps[b - 1].quote == w.quote &&
                       ps[b - 1].raw + 1 == w.space_before;
         --b)
      w.space_before = ps[b - 1].raw;
    w.space_after = w.end;
    for (size_t e = k;
         e < ps.size() && literal_space(e) && ps[e].quote == w.quote && ps[e].raw == w.space_after;
         ++e)
      w.space_after = ps[e].raw + 1;
    if (a.opaque) w.editable = false;
    v.words.push_back(std::move(w));
  }
  v.can_insert = !a.opaque;
  const std::string& t = f.text;
  bool has_content = !ps.empty();
  bool ends_space = has_content && literal_space(ps.size() - 1);
  char last = a.value_end > a.value_begin ? t[a.value_end - 1] : '\0';
  if (a.value_end == a.value_begin) {
    v.insert_at = a.value_begin;
    v.insert_prefix = "\"";
    v.insert_suffix = "\"";
    v.quote = '"';
  } else if ((last == '"' || last == '\'') && !ps.empty() && ps.back().quote == last &&
             ps.back().raw < a.value_end - 1) {
    v.insert_at = a.value_end - 1;
    v.quote = last;
    v.insert_prefix = has_content && !ends_space ? " " : "";
  } else if ((last == '"' || last == '\'') && (ps.empty() || ps.back().raw < a.value_end - 1)) {
    v.insert_at = a.value_end - 1;  // "" or '' at the end
    v.quote = last;
    v.insert_prefix = has_content && !ends_space ? " " : "";
  } else {
    v.insert_at = a.value_end;  // unquoted end: a quoted part joined on
    v.insert_prefix = "\" ";
    v.insert_suffix = "\"";
    v.quote = '"';
  }
  return v;
}

Result<GrubDefaults> GrubDefaults::read(const HostFs& fs) {
  GrubDefaults g;
  g.files.push_back(ShellFile::parse(kGrubDefaults, TRY(fs.read(kGrubDefaults))));
  if (fs.is_dir(kGrubDropins)) {
    for (const auto& name : TRY(fs.list(kGrubDropins))) {
      if (name.size() < 5 || !name.ends_with(".cfg")) continue;
      std::string path = std::string(kGrubDropins) + "/" + name;
      if (fs.type(path) != FileType::kFile) continue;
      g.files.push_back(ShellFile::parse(path, TRY(fs.read(path))));
    }
  }
  return g;
}

Result<KernelCmdline> GrubDefaults::cmdline() const {
  auto env = evaluate(files);
  std::string line;
  for (const char* name : {"GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"}) {
    auto it = env.find(name);
    if (it == env.end()) continue;
    if (!it->second)
      return Error::state(
          fmt::format("cannot tell the value of {}: {} computes it ($(...), `...`, ${{x:-y}} or an "
                      "unclosed quote)",
                      name, where(name).value_or(kGrubDefaults)),
          fmt::format("write {} as a plain quoted string", name));
    line += " " + *it->second;
  }
  return KernelCmdline::parse(line);
}

std::optional<std::string> GrubDefaults::where(const std::string& name) const {
  std::optional<std::string> out;
  for (const auto& f : files)
    for (const auto& a : f.assignments)
      if (a.name == name)
        out = fmt::format("{} line {}", f.path,
                          1 + std::count(f.text.begin(), f.text.begin() + a.line_begin, '\n'));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> GrubDefaults::edit(const Edit& e) const {
  TRY(cmdline());  // a value that cannot be known cannot be edited either: say which
  std::vector<Value> values;
  std::vector<size_t> file_of;
  std::optional<size_t> last_default, last_linux;
  for (size_t fi = 0; fi < files.size(); ++fi)
    for (const auto& a : files[fi].assignments) {
      if (a.name != "GRUB_CMDLINE_LINUX" && a.name != "GRUB_CMDLINE_LINUX_DEFAULT") continue;
      (a.name == "GRUB_CMDLINE_LINUX" ? last_linux : last_default) = values.size();
      values.push_back(value_words(files[fi], a));
      file_of.push_back(fi);
    }
  size_t target = last_default ? *last_default : last_linux ? *last_linux : values.size();
  if (target == values.size()) {  // neither is set: a new line in /etc/default/grub
    const std::string& t = files[0].text;
    std::string eol = t.find("\r\n") != std::string::npos ? "\r\n" : "\n";
    Value v;
    v.insert_at = t.size();
    v.insert_prefix = (t.empty() || t.back() == '\n' ? "" : eol) + "GRUB_CMDLINE_LINUX_DEFAULT=\"";
    v.insert_suffix = "\"" + eol;
    v.quote = '"';
    values.push_back(v);
    file_of.push_back(0);
  }
  auto splices = TRY(plan_splices(values, target, e, "GRUB_CMDLINE_LINUX(_DEFAULT)"));
  std::vector<std::vector<Splice>> per_file(files.size());
  for (size_t v = 0; v < values.size(); ++v)
    for (auto& s : splices[v]) per_file[file_of[v]].push_back(s);
  std::vector<std::pair<std::string, std::string>> out;
  GrubDefaults after = *this;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    if (per_file[fi].empty()) continue;
    std::string text = apply_splices(files[fi].text, per_file[fi]);
    after.files[fi] = ShellFile::parse(files[fi].path, text);
    if (text != files[fi].text) out.emplace_back(files[fi].path, std::move(text));
  }
  // What the shell will make of the edited files is what counts: a parameter that comes back
  // through another variable is an error, not an edit that silently did nothing.
  KernelCmdline now = TRY(after.cmdline());
  if (!satisfied(e, now)) {
    auto left = to_remove(e, now);
    auto missing = to_add(e, now);
    left.insert(left.end(), missing.begin(), missing.end());
    return Error::refused(
        fmt::format("cannot edit the GRUB defaults so that grub-mkconfig sees the change: {} "
                    "would still be wrong, through a variable pcipass does not edit",
                    fmt::join(left, ", ")),
        fmt::format("edit GRUB_CMDLINE_LINUX_DEFAULT in {} by hand",
                    where("GRUB_CMDLINE_LINUX_DEFAULT").value_or(kGrubDefaults)));
  }
  return out;
}

}  // namespace pcipass::boot
