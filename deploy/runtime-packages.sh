#!/bin/sh
# Prints the Debian packages whose shared libraries the given binaries load, one a line: what
# the image's runtime stage installs, and nothing more. Fails naming a library that ldd cannot
# find or that no package holds.
# Usage: deploy/runtime-packages.sh BINARY...
set -eu
libs=$(mktemp)
packages=$(mktemp)
trap 'rm -f "$libs" "$packages"' EXIT
for bin in "$@"; do
  ldd "$bin" >"$libs.out" || { echo "runtime-packages: ldd $bin failed" >&2; exit 1; }
  if grep -q 'not found' "$libs.out"; then
    echo "runtime-packages: $bin: $(grep 'not found' "$libs.out" | tr -s ' \t' ' ')" >&2
    exit 1
  fi
  awk '$2 == "=>" && $3 ~ /^\// {print $3}' "$libs.out" >>"$libs"
done
rm -f "$libs.out"
for lib in $(sort -u "$libs"); do
  # dpkg knows a file by the path its package ships (/lib or /usr/lib: usrmerge).
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null ||
    dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null) ||
    { echo "runtime-packages: no package holds $lib" >&2; exit 1; }
  echo "${owner%%:*}" >>"$packages"
done
sort -u "$packages"
