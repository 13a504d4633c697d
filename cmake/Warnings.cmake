# Warnings for uepoll's own targets (not for third-party code).
add_library(uepoll_warnings INTERFACE)
target_compile_options(uepoll_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>
  # GCC 12 reports impossible overlaps inside std::string's inlined copies at -O2 (GCC bug
  # 105329); the warning is noise there.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>
  $<$<BOOL:${UEPOLL_WERROR}>:-Werror>)
# C sources compile with the subset that applies to C.
add_library(uepoll_c_warnings INTERFACE)
target_compile_options(uepoll_c_warnings INTERFACE -Wall -Wextra -Wpedantic
  $<$<BOOL:${UEPOLL_WERROR}>:-Werror>)
