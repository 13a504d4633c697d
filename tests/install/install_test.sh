#!/bin/sh
# Installs the build tree into a private prefix and uses the package as outside users do:
#   1. the layout: headers (detail/ included), libuepoll.so with a versioned SONAME, libuepoll.a,
#      lib*/pkgconfig/uepoll.pc, lib*/cmake/uepoll/uepollConfig.cmake
#   2. pkg-config: a C99 program (-std=c99 -Wall -Wextra -pedantic -Werror), linked against the
#      shared library and, with --static, against the archive; both are run
#   3. find_package(uepoll): a C++20 project linking uepoll::uepoll and uepoll::uepoll_static
#   4. the header alone as C11 and C++20, and every public C++ header on its own
# Run by ctest (tests/install/CMakeLists.txt), which passes the build's settings in UEPOLL_*.
set -eu

: "${UEPOLL_CMAKE:?}" "${UEPOLL_BUILD_DIR:?}" "${UEPOLL_WORK_DIR:?}" "${UEPOLL_TEST_SRC:?}"
: "${UEPOLL_CC:?}" "${UEPOLL_CXX:?}" "${UEPOLL_VERSION:?}" "${UEPOLL_SOVERSION:?}"
: "${UEPOLL_CC_ID:=}" "${UEPOLL_SANITIZE_FLAGS:=}" "${UEPOLL_GENERATOR:=}" "${UEPOLL_CONFIG:=}"

prefix=$UEPOLL_WORK_DIR/prefix
work=$UEPOLL_WORK_DIR/work
src=$UEPOLL_TEST_SRC
public_headers=$src/../../include/uepoll
# Deliberately split into words where used: compiler flags.
san=$UEPOLL_SANITIZE_FLAGS

step() { printf '=== %s\n' "$*"; }
fail() {
  printf 'install test: FAILED: %s\n' "$*" >&2
  exit 1
}
run() {
  printf '+ %s\n' "$*"
  "$@" || fail "command failed (exit $?): $*"
}

rm -rf "$prefix" "$work"
mkdir -p "$work"

step "cmake --install $UEPOLL_BUILD_DIR --prefix $prefix"
if [ -n "$UEPOLL_CONFIG" ]; then
  run "$UEPOLL_CMAKE" --install "$UEPOLL_BUILD_DIR" --prefix "$prefix" --config "$UEPOLL_CONFIG"
else
  run "$UEPOLL_CMAKE" --install "$UEPOLL_BUILD_DIR" --prefix "$prefix"
fi

step "installed layout"
libdir=
for d in "$prefix"/lib*; do
  if [ -f "$d/pkgconfig/uepoll.pc" ]; then
    libdir=$d
  fi
done
[ -n "$libdir" ] || fail "no $prefix/lib*/pkgconfig/uepoll.pc"
echo "library directory: $libdir"
for f in "$libdir/libuepoll.a" "$libdir/libuepoll.so" "$libdir/libuepoll.so.$UEPOLL_SOVERSION" \
         "$libdir/cmake/uepoll/uepollConfig.cmake" \
         "$libdir/cmake/uepoll/uepollConfigVersion.cmake"; do
  [ -f "$f" ] || fail "missing $f"
done
[ -L "$libdir/libuepoll.so" ] || fail "$libdir/libuepoll.so is not a link to the versioned library"
soname=$(readelf -d "$libdir/libuepoll.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libuepoll.so.$UEPOLL_SOVERSION" ] ||
  fail "SONAME is '$soname', not libuepoll.so.$UEPOLL_SOVERSION"
echo "SONAME: $soname"
# Every public header is installed, detail/ included.
count=0
for h in $(cd "$public_headers" && find . -type f \( -name '*.h' -o -name '*.hpp' \) | sort); do
  [ -f "$prefix/include/uepoll/$h" ] || fail "header $h is not installed in $prefix/include/uepoll"
  count=$((count + 1))
done
for h in uepoll.h detail/thread_annotations.hpp; do
  [ -f "$prefix/include/uepoll/$h" ] || fail "$prefix/include/uepoll/$h is missing"
done
echo "$count public headers installed"
# Nothing installed may point back into the build tree or the source tree.
if grep -rl -e "$UEPOLL_BUILD_DIR" -e "$(cd "$src/../.." && pwd)/include" \
     "$libdir/pkgconfig" "$libdir/cmake/uepoll"; then
  fail "the files above refer to the build or source tree"
fi

step "pkg-config"
PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
run pkg-config --exists --print-errors uepoll
version=$(pkg-config --modversion uepoll)
[ "$version" = "$UEPOLL_VERSION" ] || fail "pkg-config version '$version', expected $UEPOLL_VERSION"
includedir=$(pkg-config --variable=includedir uepoll)
[ -f "$includedir/uepoll/uepoll.h" ] ||
  fail "pkg-config's includedir '$includedir' has no uepoll/uepoll.h"
cflags=$(pkg-config --cflags uepoll)
libs=$(pkg-config --libs uepoll)
static_libs=$(pkg-config --static --libs uepoll)
echo "cflags: $cflags"
echo "libs: $libs"
echo "static libs: $static_libs"
strict_c99="-std=c99 -Wall -Wextra -pedantic -Werror"

step "C99 program, shared library"
# shellcheck disable=SC2086
run "$UEPOLL_CC" $strict_c99 $san $cflags -o "$work/c99_shared" "$src/c99_program.c" $libs
readelf -d "$work/c99_shared" | grep -q "NEEDED.*\[libuepoll.so.$UEPOLL_SOVERSION\]" ||
  fail "c99_shared does not link libuepoll.so.$UEPOLL_SOVERSION"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} run "$work/c99_shared"

step "C99 program, static library"
# pkg-config says -luepoll; with libuepoll.so next to libuepoll.a the linker would take the .so,
# so the archive is named explicitly (what a user does with -Wl,-Bstatic or -l:libuepoll.a).
static_libs=$(printf ' %s ' "$static_libs" | sed 's/ -luepoll / -l:libuepoll.a /')
static_extra=
case "$UEPOLL_CC_ID:$san" in
  # Clang's C driver leaves out the C++ part of UBSan's runtime, which the C++ archive needs.
  *Clang*:*undefined*) static_extra=-fsanitize-link-c++-runtime ;;
esac
# shellcheck disable=SC2086
run "$UEPOLL_CC" $strict_c99 $san $static_extra $cflags -o "$work/c99_static" "$src/c99_program.c" \
  $static_libs
if readelf -d "$work/c99_static" | grep -q 'NEEDED.*libuepoll'; then
  fail "c99_static depends on the shared library"
fi
run env -u LD_LIBRARY_PATH "$work/c99_static"

step "find_package(uepoll) from a CMake project"
set -- -S "$src/consumer" -B "$work/consumer" \
  "-DCMAKE_CXX_COMPILER=$UEPOLL_CXX" \
  "-DCMAKE_PREFIX_PATH=$prefix" "-DCMAKE_BUILD_TYPE=$UEPOLL_CONFIG" \
  "-DCMAKE_CXX_FLAGS=$san" "-DCMAKE_EXE_LINKER_FLAGS=$san" \
  "-DUEPOLL_EXPECTED_VERSION=$UEPOLL_VERSION"
if [ -n "$UEPOLL_GENERATOR" ]; then
  set -- "$@" -G "$UEPOLL_GENERATOR"
fi
run "$UEPOLL_CMAKE" "$@"
run "$UEPOLL_CMAKE" --build "$work/consumer"
# consumer_shared finds the installed libuepoll.so through the build tree's RPATH.
readelf -d "$work/consumer/consumer_shared" |
  grep -q "NEEDED.*\[libuepoll.so.$UEPOLL_SOVERSION\]" ||
  fail "consumer_shared does not link libuepoll.so.$UEPOLL_SOVERSION"
run "$work/consumer/consumer_shared"
run "$work/consumer/consumer_static"

step "the headers on their own"
printf '#include <uepoll/uepoll.h>\nint main(void) { return uepoll_close(-1) == -1 ? 0 : 1; }\n' \
  >"$work/header_only.c"
for std in c99 c11; do
  run "$UEPOLL_CC" -std=$std -Wall -Wextra -pedantic -Werror -I"$prefix/include" -fsyntax-only \
    "$work/header_only.c"
done
run "$UEPOLL_CXX" -std=c++20 -Wall -Wextra -pedantic -Werror -I"$prefix/include" -fsyntax-only \
  -x c++ "$work/header_only.c"
for h in $(cd "$prefix/include" && find uepoll -type f -name '*.hpp' | sort); do
  printf '#include <%s>\n' "$h" >"$work/self_contained.cpp"
  run "$UEPOLL_CXX" -std=c++20 -Wall -Wextra -pedantic -Werror -I"$prefix/include" -fsyntax-only \
    "$work/self_contained.cpp"
done

step "install test passed"
