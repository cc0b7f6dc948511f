#!/usr/bin/env bash
# `churnlab demo` from an installed churnlab, away from the source tree: `cmake --install` into a
# scratch prefix, then the installed binary runs the installed demo with its own neighbours
# (no build), as root on the network-namespace lab, and leaves no namespace behind.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$(realpath "${1:?usage: install_test.sh BUILD_DIR}")
source "$(dirname "$0")/../../scripts/lib.sh"
if [[ $(id -u) -ne 0 ]]; then
  echo "install_test: skipped: the demo's lab needs root (ip netns add)"
  exit 77
fi
fail() {
  echo "install_test: FAILED: $*" >&2
  tail -n 20 "$work/demo.log" >&2 || true
  exit 1
}
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" || fail "cmake --install"
[[ -x $work/prefix/share/churnlab/scripts/demo.sh ]] || fail "the demo was not installed"
cd "$work"  # nowhere near the source tree
timeout 300 "$work/prefix/bin/churnlab" demo --exit --dashboard-port=7481 >demo.log 2>&1 ||
  fail "churnlab demo exited $?"
grep -q "network-namespace lab 'demo" demo.log || fail "the demo did not run on the lab"
grep -Eq "^verdict +fail +pass" demo.log || fail "no side-by-side verdicts (single fail, spread pass)"
grep -q "installing\|Building\|cmake --build" demo.log && fail "the installed demo built something"
prefix=$(sed -nE "s/.*network-namespace lab '([^']+)'.*/\1/p" demo.log | head -n 1)
[[ -z $(ip netns list | grep "^$prefix-") ]] || fail "the lab's namespaces are still there"
echo "install_test: the installed churnlab ran the demo from $work/prefix and cleaned up"
