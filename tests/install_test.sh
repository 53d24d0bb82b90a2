#!/usr/bin/env bash
# install_test.sh — `make install` into a fresh prefix, then use it as a C programmer would:
# the files and symbolic links, the shared library's soname, its dynamic symbols (exactly the
# functions include/resnet.h declares, all rn_), pkg-config, `resnet --version`, and
# examples/classify.c built with `pkg-config --cflags --libs resnet` against the installed copy,
# classifying images as `resnet predict` does; then `make uninstall` removes every file.
#
# Skipped in sanitizer builds (BUILD=build-san: their objects need the sanitizer runtime loaded
# first, which a program linked by pkg-config's flags does not do) and without pkg-config.
# Environment: BUILD (build folder), CC (compiler, default cc).
source "$(dirname "$0")/testlib.sh"
BUILD=${BUILD:-build}
CC=${CC:-cc}
PREFIX="$TMP/prefix"
WEIGHTS=tests/data/resnet20_torch.safetensors
IMAGES=(tests/data/images/rgb32.png tests/data/images/gray32.png tests/data/images/rgb40x28.png)
VERSION=$(sed -n 's/^#define RN_VERSION_STRING "\(.*\)"/\1/p' include/resnet.h)
MAJOR=${VERSION%%.*}

if [ "$BUILD" != build ]; then
    skip "make install" "BUILD=$BUILD: only the plain build is installed and tested here"
    finish
    exit $?
fi
if ! command -v pkg-config >/dev/null; then
    skip "make install" "pkg-config is not installed (apt-get install pkg-config)"
    finish
    exit $?
fi

do_install() {
    make -s --no-print-directory install PREFIX="$PREFIX" || return 1
    local f missing=0
    for f in bin/resnet include/resnet.h lib/libresnet.a "lib/libresnet.so.$VERSION" \
        "lib/libresnet.so.$MAJOR" lib/libresnet.so lib/pkgconfig/resnet.pc; do
        [ -e "$PREFIX/$f" ] || { echo "missing: $f" >&2; missing=1; }
    done
    if [ "$(readlink "$PREFIX/lib/libresnet.so.$MAJOR")" != "libresnet.so.$VERSION" ]; then
        echo "libresnet.so.$MAJOR does not point to libresnet.so.$VERSION" >&2
        missing=1
    fi
    [ "$missing" = 0 ] && echo "7 files under $PREFIX"
}
check "make install PREFIX=..." do_install

soname() {
    local s
    s=$(readelf -d "$PREFIX/lib/libresnet.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$s" = "libresnet.so.$MAJOR" ] ||
        { echo "soname '$s', expected libresnet.so.$MAJOR" >&2; return 1; }
    echo "soname $s"
}
check "soname libresnet.so.MAJOR" soname

# The functions the header declares, as the compiler sees them (gcc -aux-info), against the
# symbols the library exports (nm -D): the same set, every one rn_.
exports() {
    gcc -aux-info "$TMP/aux.txt" -fsyntax-only -x c include/resnet.h || return 1
    grep 'include/resnet.h' "$TMP/aux.txt" | grep -o '\brn_[a-z0-9_]* (' | sed 's/ (//' |
        sort -u >"$TMP/declared.txt"
    nm -D --defined-only "$PREFIX/lib/libresnet.so.$VERSION" | awk '{ print $NF }' |
        sed 's/@.*//' | sort -u >"$TMP/exported.txt"
    if grep -v '^rn_' "$TMP/exported.txt" >&2; then
        echo "exported symbols without rn_ (above)" >&2
        return 1
    fi
    if ! diff "$TMP/declared.txt" "$TMP/exported.txt" >&2; then
        echo "declared (<) and exported (>) differ" >&2
        return 1
    fi
    echo "$(wc -l <"$TMP/exported.txt") symbols, exactly the header's functions"
}
check "nm -D: only the public rn_ API" exports

version() {
    local pc prog
    pc=$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --modversion resnet) || return 1
    prog=$("$PREFIX/bin/resnet" --version) || return 1
    [ "$pc" = "$VERSION" ] && [ "${prog%% (*}" = "resnet $VERSION" ] ||
        { echo "pkg-config '$pc', resnet --version '$prog', header '$VERSION'" >&2; return 1; }
    echo "$prog"
}
check "pkg-config --modversion and resnet --version" version

example() {
    local flags
    flags=$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs resnet) || return 1
    # shellcheck disable=SC2086
    "$CC" -std=c11 -Wall -Wextra -Werror examples/classify.c $flags -o "$TMP/classify" || return 1
    local lib="$PREFIX/lib"
    if ! LD_LIBRARY_PATH=$lib ldd "$TMP/classify" | grep -q "libresnet.so.$MAJOR => $lib/"; then
        echo "classify is not linked to the installed libresnet.so.$MAJOR" >&2
        return 1
    fi
    LD_LIBRARY_PATH=$lib "$TMP/classify" "$WEIGHTS" "${IMAGES[@]}" >"$TMP/classify.tsv" || return 1
    "$RESNET" predict --weights "$WEIGHTS" --top 1 "${IMAGES[@]}" | cut -f 1,3,4 \
        >"$TMP/predict.tsv" || return 1
    if ! diff "$TMP/predict.tsv" "$TMP/classify.tsv" >&2; then
        echo "classify (>) differs from predict (<)" >&2
        return 1
    fi
    echo "$(wc -l <"$TMP/classify.tsv") images classified as resnet predict does"
}
check "examples/classify.c against the installed copy" example

uninstall() {
    make -s --no-print-directory uninstall PREFIX="$PREFIX" || return 1
    local left
    left=$(find "$PREFIX" ! -type d)
    [ -z "$left" ] || { echo "left behind: $left" >&2; return 1; }
    echo "no files left under $PREFIX"
}
check "make uninstall" uninstall
finish
