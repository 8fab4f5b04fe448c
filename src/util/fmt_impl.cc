// fmt's compiled part, built once. Debian's libfmt-dev ships it as the header fmt/format-inl.h;
// the rest of the tree includes fmt without FMT_HEADER_ONLY, so a file compiles only what it
// formats. Header-only fmt compiled the whole implementation into every file: 20-40% of a file's
// compile time (measured: sriov.cc 23 s -> 14 s, groups.cc 4.9 s -> 3.6 s, g++ -O2 -g). Linking
// libfmt.so instead would bring libstdc++.so into the static pcipass's dynamic twin and every
// short call's relocations (CMakeLists.txt, the util layer). The instantiations are those that
// fmt's headers declare and do not define: what fmt's own src/format.cc instantiates.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;

template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;

template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template FMT_API auto decimal_point_impl(locale_ref) -> wchar_t;

template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void buffer<wchar_t>::append(const wchar_t*, const wchar_t*);

}  // namespace detail
FMT_END_NAMESPACE
