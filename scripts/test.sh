#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test suite (unit, loopback integration,
# network-namespace, command-line, browser, security, fault and Kubernetes-manifest tests), then
# fuzzes the run-spec parser for a minute (scripts/fuzz.sh). As root the netns tests run;
# otherwise they are skipped with a message saying so. Test artifacts (the dashboard screenshot, /metrics) land
# in build/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
bash scripts/build.sh
cd build
ctest --output-on-failure -j 2 --timeout 300
cd ..
# The run-spec fuzz target (clang, libFuzzer), for a bounded minute.
bash scripts/fuzz.sh 60
