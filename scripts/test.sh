#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite (unit, loopback integration,
# network-namespace and command-line tests). As root the netns test runs; otherwise it is skipped
# with a message saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j 2 --timeout 300
