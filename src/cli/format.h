// Human output: aligned tables that fit the terminal, colour only on a terminal (NO_COLOR).
#pragma once

#include <ostream>
#include <string>
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
  void add(std::vector<Cell> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  // The last column takes what is left of the width and is cut with "…" when it must be.
  void print(std::ostream& out, const Term& term, int indent = 0) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// Display width of UTF-8 text (code points; good enough for names and box drawing).
size_t display_width(const std::string& s);
std::string truncate_to(const std::string& s, size_t width);

void print_error(std::ostream& err, const Term& term, const Error& e);

}  // namespace pcipass::cli
