#!/bin/sh
# Prints, one per line, the Debian packages that hold the shared libraries
# BINARY loads: what the image's runtime stage installs (Dockerfile), so a
# library added to the Makefile reaches the image without editing it.
# A library found in no package is an error (the image would not run).
# Debian 12 merged /lib into /usr/lib, while packages still list the
# /lib path: each library is looked up by the path ldd gives, its real
# path, and both with and without /usr.
#
#   deploy/ndtpipe/runtime-packages.sh build/ndtpipe
set -eu
binary=${1:?usage: runtime-packages.sh BINARY}
libs=$(ldd "$binary" | awk '/=> \// { print $3 }')
[ -n "$libs" ] || { echo "runtime-packages: ldd found no libraries in $binary" >&2; exit 1; }
for lib in $libs; do
    real=$(readlink -f "$lib")
    pkg=
    for path in "$lib" "$real" "/usr$lib" "${lib#/usr}" "/usr$real" "${real#/usr}"; do
        pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || { echo "runtime-packages: no package holds $lib" >&2; exit 1; }
    echo "$pkg"
done | sort -u
