#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite (unit, loopback integration,
# network-namespace, command-line and browser tests). As root the netns tests run; otherwise they
# are skipped with a message saying so. Test artifacts (the dashboard screenshot, /metrics) land
# in build/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
bash scripts/build.sh
cd build
ctest --output-on-failure -j 2 --timeout 300
