#!/usr/bin/env bash
# Installs the Debian 12 packages churnlab needs to build, run, test and benchmark, and the
# dashboard's npm packages (dashboard/package-lock.json).
# Idempotent: packages already present are skipped, and nothing runs apt-get when all are there.
# Usage: scripts/install-deps.sh [--test] [--bench] [--image]
#   --test   adds Debian's chromium, the Prometheus parser and server, xmllint, kubectl, clang's
#            libFuzzer, nftables and faketime for the browser, /metrics, JUnit, Kubernetes, fuzz,
#            NAT, SYN-count and clock-step tests, gRPC for the hostile-peer tests' fake peers, and
#            nginx for the HTTPS test's real server
#   --bench  adds nginx and wrk for bench/
#   --image  adds podman (with runc, for machines where crun cannot run) and mmdebstrap for the
#            container image test (scripts/image-test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config clang-format ccache
  libabsl-dev libgtest-dev libgmock-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libsqlite3-dev libevent-dev libssl-dev libcpp-httplib-dev nlohmann-json3-dev libxml2-dev
  iproute2 procps socat curl openssl
)
test_tools=0
for arg in "$@"; do
  case "$arg" in
    --test) packages+=(chromium python3-prometheus-client prometheus libxml2-utils clang
                       libclang-rt-14-dev nftables faketime python3-grpcio python3-protobuf
                       nginx-light)
            test_tools=1 ;;
    --bench) packages+=(libbenchmark-dev nginx-light wrk) ;;
    --image) packages+=(podman runc mmdebstrap) ;;
    *) echo "install-deps: unknown option '$arg' (use --test, --bench, --image)" >&2; exit 2 ;;
  esac
done
# Node.js for the dashboard's packages: the machine's own when it has one, else Debian's.
command -v npm >/dev/null || packages+=(nodejs npm)
# kubectl (its built-in kustomize) for the Kubernetes check: the machine's own, else Debian's.
if [[ $test_tools -eq 1 ]] && ! command -v kubectl >/dev/null; then
  packages+=(kubernetes-client)
fi

# The dashboard's chart library (and playwright-core for its test), exactly as locked, and for
# the tests the Kubernetes schema validator in deploy/k8s.
install_npm() {
  local dirs=(dashboard)
  [[ $test_tools -eq 1 ]] && dirs+=(deploy/k8s deploy/k8s/monitoring)
  for dir in "${dirs[@]}"; do
    if [[ ! -f $dir/node_modules/.package-lock.json ||
          $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
      echo "install-deps: npm ci in $dir/"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  install_npm
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
install_npm
