// Unified diffs of two texts, line by line, in the shape `diff -u` prints (3 lines of context,
// "\ No newline at end of file"), for dry runs and for undo's refusal.
#pragma once

#include <string>
#include <string_view>

namespace pcipass {

// "" when the texts are equal. Headers are `--- a/PATH` and `+++ b/PATH` (no timestamps);
// an absent side is /dev/null, as `git diff` prints for created and removed files.
std::string unified_diff(std::string_view before, std::string_view after, const std::string& path,
                         bool before_absent = false, bool after_absent = false);

}  // namespace pcipass
