#include "util/diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace pcipass {

namespace {

constexpr size_t kContext = 3;

// One line with its end: the last line of a file may lack "\n", and then it differs from the
// same text with one (as diff(1) sees it).
struct Line {
  std::string_view text;
  bool newline;
  bool operator==(const Line&) const = default;
};

std::vector<Line> split_lines(std::string_view s) {
  std::vector<Line> out;
  while (!s.empty()) {
    auto nl = s.find('\n');
    if (nl == std::string_view::npos) {
      out.push_back({s, false});
      break;
    }
    out.push_back({s.substr(0, nl), true});
    s.remove_prefix(nl + 1);
  }
  return out;
}

enum class Op { kKeep, kDelete, kInsert };

// Edit script from the longest common subsequence (dynamic programming over the lines that
// differ once the common head and tail are set aside: configuration files are small).
std::vector<Op> edit_script(const std::vector<Line>& a, const std::vector<Line>& b) {
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) ++head;
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head &&
         a[a.size() - 1 - tail] == b[b.size() - 1 - tail])
    ++tail;
  size_t n = a.size() - head - tail, m = b.size() - head - tail;
  // lcs[i][j]: LCS length of a[head+i..] and b[head+j..].
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[head + i] == b[head + j] ? lcs[i + 1][j + 1] + 1
                                             : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<Op> ops(head, Op::kKeep);
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[head + i] == b[head + j]) {
      ops.push_back(Op::kKeep), ++i, ++j;
    } else if (j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push_back(Op::kDelete), ++i;
    } else {
      ops.push_back(Op::kInsert), ++j;
    }
  }
  ops.insert(ops.end(), tail, Op::kKeep);
  return ops;
}

// diff(1)'s range: "3" for one line, "3,4" otherwise; an empty range names the line before.
std::string range(size_t start, size_t count) {
  if (count == 1) return std::to_string(start + 1);
  return fmt::format("{},{}", count == 0 ? start : start + 1, count);
}

void put_line(std::string& out, char mark, const Line& l) {
  out += mark;
  out.append(l.text);
  out += '\n';
  if (!l.newline) out += "\\ No newline at end of file\n";
}

// One hunk: ops[from, to) with a at line ai, b at line bi where it starts.
void put_hunk(std::string& out, const std::vector<Op>& ops, size_t from, size_t to,
              const std::vector<Line>& a, const std::vector<Line>& b, size_t ai, size_t bi) {
  size_t na = 0, nb = 0;
  for (size_t k = from; k < to; ++k) {
    if (ops[k] != Op::kInsert) ++na;
    if (ops[k] != Op::kDelete) ++nb;
  }
  out += fmt::format("@@ -{} +{} @@\n", range(ai, na), range(bi, nb));
  for (size_t k = from; k < to;) {
    if (ops[k] == Op::kKeep) {
      put_line(out, ' ', a[ai]);
      ++ai, ++bi, ++k;
      continue;
    }
    // A run of changes prints its deletions, then its insertions, as diff(1) does.
    size_t end = k;
    while (end < to && ops[end] != Op::kKeep) ++end;
    for (size_t x = k; x < end; ++x)
      if (ops[x] == Op::kDelete) put_line(out, '-', a[ai++]);
    for (size_t x = k; x < end; ++x)
      if (ops[x] == Op::kInsert) put_line(out, '+', b[bi++]);
    k = end;
  }
}

}  // namespace

std::string unified_diff(std::string_view before, std::string_view after, const std::string& path,
                         bool before_absent, bool after_absent) {
  if (before == after && before_absent == after_absent) return {};
  auto a = split_lines(before), b = split_lines(after);
  auto ops = edit_script(a, b);
  std::string out = fmt::format("--- {}\n+++ {}\n", before_absent ? "/dev/null" : "a" + path,
                                after_absent ? "/dev/null" : "b" + path);
  // Positions in a and b before each op, to start hunks anywhere.
  std::vector<size_t> pa(ops.size() + 1), pb(ops.size() + 1);
  for (size_t k = 0; k < ops.size(); ++k) {
    pa[k + 1] = pa[k] + (ops[k] != Op::kInsert);
    pb[k + 1] = pb[k] + (ops[k] != Op::kDelete);
  }
  size_t k = 0;
  while (k < ops.size()) {
    while (k < ops.size() && ops[k] == Op::kKeep) ++k;
    if (k == ops.size()) break;
    size_t from = k >= kContext ? k - kContext : 0;
    // Extend over changes closer than two contexts apart: they share one hunk.
    size_t end = k;
    for (;;) {
      while (end < ops.size() && ops[end] != Op::kKeep) ++end;
      size_t keep = end;
      while (keep < ops.size() && ops[keep] == Op::kKeep) ++keep;
      if (keep < ops.size() && keep - end <= 2 * kContext) {
        end = keep;
        continue;
      }
      end = std::min(end + kContext, keep);
      break;
    }
    put_hunk(out, ops, from, end, a, b, pa[from], pb[from]);
    k = end;
  }
  return out;
}

}  // namespace pcipass
