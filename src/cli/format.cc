#include "cli/format.h"

#include <sys/ioctl.h>
#include <unistd.h>

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
  err << term.paint(Style::kBad, "error:") << ' ' << e.describe() << '\n';
  if (!e.fix.empty()) err << "  fix: " << e.fix << '\n';
}

}  // namespace pcipass::cli
