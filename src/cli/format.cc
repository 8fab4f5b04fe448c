#include "cli/format.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace pcipass::cli {

std::string Term::paint(Style s, const std::string& text) const {
  if (!color || s == Style::kPlain || text.empty()) return text;
  const char* code = "";
  switch (s) {
    case Style::kBold:
      code = "1";
      break;
    case Style::kDim:
      code = "2";
      break;
    case Style::kGood:
      code = "32";
      break;
    case Style::kWarn:
      code = "33";
      break;
    case Style::kBad:
      code = "1;31";
      break;
    case Style::kPlain:
      break;
  }
  return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
}

Term detect_term(int fd, const std::string& mode, const ProcessContext& process) {
  Term t;
  bool tty = ::isatty(fd);
  auto no_color = process.env("NO_COLOR");
  t.color = mode == "always" || (mode == "auto" && tty && !(no_color && !no_color->empty()));
  if (tty) {
    winsize ws{};
    t.width = (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) ? ws.ws_col : 80;
  }
  return t;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0.
size_t utf8_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xc0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;
    if (c == 0xf4 && b(1) >= 0x90) return 0;
    return 4;
  }
  return 0;
}

uint32_t code_point(std::string_view s, size_t i, size_t n) {
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k])); };
  if (n == 2) return (b(0) & 0x1f) << 6 | (b(1) & 0x3f);
  if (n == 3) return (b(0) & 0x0f) << 12 | (b(1) & 0x3f) << 6 | (b(2) & 0x3f);
  return (b(0) & 0x07) << 18 | (b(1) & 0x3f) << 12 | (b(2) & 0x3f) << 6 | (b(3) & 0x3f);
}

// C1 controls and the bidirectional embeddings, overrides and isolates: they reorder or hide
// what follows them on a terminal.
bool hidden_control(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = utf8_length(text, i);
    if (n == 1 && c >= 0x20 && c != 0x7f) {
      out += text[i++];
    } else if (n == 0 || n == 1) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (uint32_t cp = code_point(text, i, n); hidden_control(cp)) {
      out += fmt::format("\\u{:04x}", cp);
      i += n;
    } else {
      out.append(text, i, n);
      i += n;
    }
  }
  return out;
}

size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

std::string truncate_to(const std::string& s, size_t width) {
  if (display_width(s) <= width) return s;
  if (width == 0) return {};
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if ((c & 0xc0) != 0x80 && ++n > width - 1) break;
    out += s[i];
  }
  return out + "…";
}

void Table::add(std::vector<Cell> row) {
  for (auto& cell : row) cell.text = printable(cell.text);
  rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out, const Term& term, int indent) const {
  size_t cols = headers_.size();
  std::vector<size_t> w(cols, 0);
  for (size_t c = 0; c < cols; ++c) w[c] = display_width(headers_[c]);
  for (const auto& row : rows_)
    for (size_t c = 0; c < cols && c < row.size(); ++c)
      w[c] = std::max(w[c], display_width(row[c].text));
  size_t used = indent;
  for (size_t c = 0; c + 1 < cols; ++c) used += w[c] + 2;
  auto emit = [&](const std::vector<Cell>& row, bool header) {
    std::string line(indent, ' ');
    for (size_t c = 0; c < cols; ++c) {
      std::string text = c < row.size() ? row[c].text : "";
      bool last = c + 1 == cols;
      if (last && term.width > 0 && static_cast<size_t>(term.width) > used + 8)
        text = truncate_to(text, term.width - used);
      Style style = header ? Style::kBold : (c < row.size() ? row[c].style : Style::kPlain);
      line += term.paint(style, text);
      if (!last) line += std::string(w[c] - display_width(text) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };
  std::vector<Cell> header;
  for (const auto& h : headers_) header.push_back({h});
  emit(header, true);
  for (const auto& row : rows_) emit(row, false);
}

void print_error(std::ostream& err, const Term& term, const Error& e) {
  err << term.paint(Style::kBad, "error:") << ' ' << printable(e.describe()) << '\n';
  if (!e.fix.empty()) err << "  fix: " << printable(e.fix) << '\n';
}

void print_line(std::ostream& out, std::string_view line) {
  out << printable(line) << '\n';
}

void print_lines(std::ostream& out, std::string_view text, std::string_view indent) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    out << indent << printable(line) << '\n';
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

void print_warning(std::ostream& err, const Term& term, std::string_view text) {
  err << term.paint(Style::kWarn, "warning:") << ' ' << printable(text) << '\n';
}

}  // namespace pcipass::cli
