#include "initramfs/mkinitcpio_conf.h"

#include <fmt/format.h>

#include <algorithm>

namespace pcipass::initramfs {

namespace {

bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}
bool blank(char c) {
  return c == ' ' || c == '\t';
}
bool space(char c) {
  return blank(c) || c == '\n' || c == '\r';
}

std::string module_key(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

class Parser {
 public:
  Parser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

  Result<ShellConf> run() {
    ShellConf conf;
    std::string raw;
    while (i_ < s_.size()) {
      if (auto a = array_start()) {
        if (!raw.empty()) conf.segments.push_back({std::move(raw), std::nullopt});
        raw.clear();
        Segment seg;
        seg.array = TRY(array(*a));
        conf.segments.push_back(std::move(seg));
        continue;
      }
      raw += raw_line();
    }
    if (open_quote_)
      return Error::invalid(
          fmt::format("{}: a quote opened on line {} is never closed", path_, open_quote_),
          fmt::format("fix the quoting in {} (mkinitcpio cannot read it either)", path_));
    if (!raw.empty()) conf.segments.push_back({std::move(raw), std::nullopt});
    return conf;
  }

 private:
  // At a line's start: "  NAME=(" or "NAME+=(": the head's length and the name.
  std::optional<ShellArray> array_start() const {
    size_t j = i_;
    while (j < s_.size() && blank(s_[j])) ++j;
    size_t name_begin = j;
    if (j >= s_.size() || !name_start(s_[j])) return std::nullopt;
    while (j < s_.size() && name_char(s_[j])) ++j;
    ShellArray a;
    a.name = std::string(s_.substr(name_begin, j - name_begin));
    if (j < s_.size() && s_[j] == '+') a.append = true, ++j;
    if (s_.substr(j, 2) != "=(") return std::nullopt;
    a.head = std::string(s_.substr(i_, j + 2 - i_));
    a.line = line_;
    return a;
  }

  // One line that is not an array, with its newline; a quote opened on it runs on to where it
  // closes, so a multi-line string's lines are never taken for assignments.
  std::string raw_line() {
    size_t begin = i_;
    char quote = 0;
    int quote_line = 0;
    for (; i_ < s_.size(); ++i_) {
      char c = s_[i_];
      if (c == '\n') {
        ++line_;
        if (!quote) {
          ++i_;
          break;
        }
      } else if (quote) {
        if (c == quote)
          quote = 0;
        else if (c == '\\' && quote == '"' && i_ + 1 < s_.size() && s_[i_ + 1] != '\n')
          ++i_;
      } else if (c == '#' && (i_ == begin || space(s_[i_ - 1]))) {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        --i_;
      } else if (c == '\'' || c == '"') {
        quote = c;
        quote_line = line_;
      } else if (c == '\\' && i_ + 1 < s_.size() && s_[i_ + 1] != '\n') {
        ++i_;
      }
    }
    if (quote) open_quote_ = quote_line;
    return std::string(s_.substr(begin, i_ - begin));
  }

  Result<ShellArray> array(ShellArray a) {
    i_ += a.head.size();
    std::string gap;
    for (;;) {
      while (i_ < s_.size() && (space(s_[i_]) || s_[i_] == '#' || continuation())) {
        if (continuation()) {  // a backslash-newline joins lines: no word
          gap += s_.substr(i_, 2);
          i_ += 2, ++line_;
          continue;
        }
        if (s_[i_] == '#') {
          while (i_ < s_.size() && s_[i_] != '\n') gap += s_[i_++];
          continue;
        }
        if (s_[i_] == '\n') ++line_;
        gap += s_[i_++];
      }
      if (i_ >= s_.size())
        return Error::invalid(
            fmt::format("{}: {}=( on line {} is not closed with ')'", path_, a.name, a.line),
            fmt::format("fix the array in {} (mkinitcpio cannot read it either)", path_));
      if (s_[i_] == ')') {
        ++i_;
        a.tail = std::move(gap);
        return a;
      }
      ArrayWord w = TRY(word(a));
      w.before = std::move(gap);
      gap.clear();
      a.words.push_back(std::move(w));
    }
  }

  bool continuation() const { return s_[i_] == '\\' && i_ + 1 < s_.size() && s_[i_ + 1] == '\n'; }

  Result<ArrayWord> word(const ShellArray& a) {
    ArrayWord w;
    size_t begin = i_;
    while (i_ < s_.size() && !space(s_[i_]) && s_[i_] != ')') {
      char c = s_[i_++];
      if (c == '\'' || c == '"') {
        TRY(quoted(c, w.value, a));
      } else if (c == '\\' && i_ < s_.size()) {
        if (s_[i_] == '\n')
          ++line_;
        else
          w.value += s_[i_];
        ++i_;
      } else {
        w.value += c;
      }
    }
    w.raw = std::string(s_.substr(begin, i_ - begin));
    return w;
  }

  Status quoted(char q, std::string& value, const ShellArray& a) {
    for (; i_ < s_.size(); ++i_) {
      char c = s_[i_];
      if (c == q) {
        ++i_;
        return {};
      }
      if (c == '\n') ++line_;
      if (q == '"' && c == '\\' && i_ + 1 < s_.size() &&
          std::string_view("\"\\$`\n").find(s_[i_ + 1]) != std::string_view::npos) {
        ++i_;
        if (s_[i_] == '\n') {
          ++line_;
          continue;
        }
        c = s_[i_];
      }
      value += c;
    }
    return Error::invalid(fmt::format("{}: a quote ({}) in {}=( on line {} is never closed", path_,
                                      q, a.name, a.line),
                          fmt::format("fix the quoting in {}", path_));
  }

  std::string_view s_;
  const std::string& path_;
  size_t i_ = 0;
  int line_ = 1;
  int open_quote_ = 0;  // the line of a quote outside arrays never closed; 0: none
};

}  // namespace

std::string Segment::print() const {
  if (!array) return text;
  std::string out = array->head;
  for (const auto& w : array->words) out += w.before + w.raw;
  return out + array->tail + ")";
}

std::string ShellConf::print() const {
  std::string out;
  for (const auto& s : segments) out += s.print();
  return out;
}

std::vector<const ShellArray*> ShellConf::arrays(std::string_view name) const {
  std::vector<const ShellArray*> out;
  for (const auto& s : segments)
    if (s.array && s.array->name == name) out.push_back(&*s.array);
  return out;
}

std::vector<int> ShellConf::string_assignments(std::string_view name) const {
  std::vector<int> out;
  int line = 1;
  for (const auto& s : segments) {
    std::string text = s.print();
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find('\n', at);
      std::string_view l =
          std::string_view(text).substr(at, end == std::string::npos ? end : end - at);
      size_t j = l.find_first_not_of(" \t");
      if (!s.array && j != std::string_view::npos && l.substr(j).starts_with(name) &&
          l.substr(j + name.size()).starts_with("=") &&
          !l.substr(j + name.size()).starts_with("=("))
        out.push_back(line);
      if (end == std::string::npos) break;
      ++line;
      at = end + 1;
    }
  }
  return out;
}

Result<ShellConf> parse_shell_conf(std::string_view text, const std::string& path) {
  return Parser(text, path).run();
}

Result<std::string> with_array_words(std::string_view text, const std::string& path,
                                     const std::string& name, const std::vector<std::string>& words,
                                     const char* op, bool modules) {
  ShellConf conf = TRY(parse_shell_conf(text, path));
  if (auto lines = conf.string_assignments(name); !lines.empty())
    return Error::invalid(
        fmt::format("{}: {} is assigned a string on line {}, not an array", path, name, lines[0]),
        fmt::format("write it as an array, {}=(...), as mkinitcpio.conf(5) documents; pcipass "
                    "then adds to it",
                    name));
  auto key = [modules](const std::string& w) { return modules ? module_key(w) : w; };
  std::vector<std::string> listed;
  for (const ShellArray* a : conf.arrays(name))
    for (const auto& w : a->words) listed.push_back(key(w.value));
  std::vector<std::string> missing;
  for (const auto& w : words)
    if (std::find(listed.begin(), listed.end(), key(w)) == listed.end() &&
        std::find(missing.begin(), missing.end(), w) == missing.end())
      missing.push_back(w);
  if (missing.empty()) return std::string(text);
  ShellArray* last = nullptr;
  for (auto& s : conf.segments)
    if (s.array && s.array->name == name) last = &*s.array;
  if (!last) {
    std::string out(text);
    if (!out.empty() && out.back() != '\n') out += '\n';
    std::string joined;
    for (const auto& w : missing) joined += (joined.empty() ? "" : " ") + w;
    return out + fmt::format("{}{}({})\n", name, op, joined);
  }
  for (const auto& w : missing) last->words.push_back({last->words.empty() ? "" : " ", w, w});
  // A comment or a line continuation right after the last word would join the new one.
  if (!last->tail.empty() && !space(last->tail[0])) last->tail.insert(0, " ");
  return conf.print();
}

}  // namespace pcipass::initramfs
