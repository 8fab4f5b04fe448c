// Human output: aligned tables that fit the terminal, colour only on a terminal (NO_COLOR).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "host/context.h"
#include "util/result.h"

namespace pcipass::cli {

enum class Style { kPlain, kBold, kDim, kGood, kWarn, kBad };

struct Term {
  bool color = false;
  int width = 0;  // 0: not a terminal, never truncate
  std::string paint(Style s, const std::string& text) const;
};

// Decides colour and width for a stream: `mode` is auto|always|never; the process's NO_COLOR
// (non-empty) disables auto.
Term detect_term(int fd, const std::string& mode, const ProcessContext& process);

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  struct Cell {
    std::string text;
    Style style = Style::kPlain;
  };
  // Cells are made printable() here: tables carry host-controlled names.
  void add(std::vector<Cell> row);
  size_t size() const { return rows_.size(); }
  // The last column takes what is left of the width and is cut with "…" when it must be.
  void print(std::ostream& out, const Term& term, int indent = 0) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// Host-controlled text (driver, process and pci.ids names, file contents, arguments) made safe
// for a terminal: control characters (newline included), DEL, C1 controls, bidirectional
// overrides and bytes that are not UTF-8 become visible escapes ("\x1b", "\u202e"), so no
// string from the host can move the cursor, recolour, retitle or hide text. Plain text is
// returned unchanged. Every human line built from such text goes through it
// (docs/hostile-input.md).
std::string printable(std::string_view text);

// Display width of UTF-8 text (code points; good enough for names and box drawing).
size_t display_width(const std::string& s);
std::string truncate_to(const std::string& s, size_t width);

void print_error(std::ostream& err, const Term& term, const Error& e);
// One line of human output made printable(), then a newline.
void print_line(std::ostream& out, std::string_view line);
// Text of several lines (a diff), each made printable().
void print_lines(std::ostream& out, std::string_view text, std::string_view indent = {});
void print_warning(std::ostream& err, const Term& term, std::string_view text);

}  // namespace pcipass::cli
