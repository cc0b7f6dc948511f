#!/usr/bin/env bash
# Builds the container image (deploy/Dockerfile) with podman or docker, then runs a coordinator,
# a target and two agents as containers, as Kubernetes runs them (user 10001, every capability
# dropped, no privilege escalation, read-only root), and checks a run's report; then runs
# `churnlab demo --exit` in a container of the image, as its user would.
#
# The base image is Debian 12's (docker.io/library/debian:bookworm-slim) when the engine has it;
# otherwise it is made from Debian's packages with mmdebstrap (localhost/churnlab-debian:bookworm)
# and kept for the next build. The build trusts $CHURNLAB_PROXY_CA (default: this machine's CA
# bundle, which holds any TLS-intercepting proxy's CA), handed in as a build secret.
# The image is tagged churnlab:VERSION (the project's version) and labelled with a hash of the
# sources it was built from; a later run with the same sources reuses it instead of building.
# The containers share one network namespace of their own (the coordinator's, --network=none:
# loopback only), so nothing touches the machine's network.
#
# Usage: scripts/image-test.sh [--engine=podman|docker] [--rebuild | --only-if-cheap] [--remove]
#   --rebuild        build even when an image of these sources exists
#   --only-if-cheap  skip (77) unless an image of these sources exists (then only the containers
#                    run) or one built here from the same packages does (its layers and compiler
#                    cache are here: the build compiles only what changed, about 30 s)
#   --remove         remove the image, its build stage (kept as the next build's cache) and the
#                    base it made, afterwards
# Exit codes: 0 passed, 1 failed, 2 bad usage, 77 skipped (no working engine, no image of these
# sources nor a cheap build with --only-if-cheap, no base image and no mmdebstrap; the message
# says which).
set -euo pipefail
cd "$(dirname "$0")/.."
engine=""
rebuild=0
only_if_cheap=0
remove=0
for arg in "$@"; do
  case "$arg" in
    --engine=podman | --engine=docker) engine=${arg#*=} ;;
    --rebuild) rebuild=1 ;;
    --only-if-cheap) only_if_cheap=1 ;;
    --remove) remove=1 ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image-test: unknown argument '$arg' (--engine=podman|docker, --rebuild, --only-if-cheap, --remove)" >&2
       exit 2 ;;
  esac
done
source scripts/lib.sh
say() { echo "image-test: $*"; }
skip() { say "skipped: $*" >&2; exit 77; }
fail() { say "FAILED: $*" >&2; exit 1; }

# The first engine that answers (a docker client without a daemon does not).
if [[ -z $engine ]]; then
  for e in podman docker; do
    if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
  done
  [[ -n $engine ]] || skip "no working container engine (podman or docker: 'podman info' and 'docker info' both fail or are missing; scripts/install-deps.sh --image installs podman)"
else
  "$engine" info >/dev/null 2>&1 || skip "$engine is here but 'info' fails: no working engine"
fi
exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }
version=$(sed -nE 's/^project\(churnlab VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
image=localhost/churnlab:$version
build_image=localhost/churnlab-build:$version  # the build stage, kept as the next build's cache
say "engine $engine ($("$engine" --version))"

# The build's context is what a clean checkout holds: the tracked files and new ones git does
# not ignore (no build tree, no node_modules, no token), copied to a scratch folder. Outside a
# git work tree, the tree as it is (less builds, node_modules and .git).
context_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -z | sort -z
  else
    find . -type f -not -path './.git/*' -not -path './build*' -not -path '*/node_modules/*' \
      -printf '%P\0' | sort -z
  fi
}
make_context() {
  mkdir -p "$work/context"
  context_files | while IFS= read -r -d '' f; do
    [[ -f $f ]] && printf '%s\0' "$f"
  done | xargs -0 cp --parents -t "$work/context"
  cp .dockerignore "$work/context/"
}
# What the build stage's package layer is made from: a change here reinstalls every package.
deps_hash() {
  cat deploy/Dockerfile scripts/install-deps.sh dashboard/package.json dashboard/package-lock.json |
    sha256sum | cut -c1-16
}
source_hash() {
  context_files | while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
    xargs -0 sha256sum | sha256sum | cut -c1-16
}

made_base=""
# Sets `base`: Debian 12's image when the engine has it, else one made here with mmdebstrap.
find_base() {
  local made=localhost/churnlab-debian:bookworm
  if exists docker.io/library/debian:bookworm-slim; then
    base=docker.io/library/debian:bookworm-slim
  elif exists "$made"; then
    base=$made
  else
    command -v mmdebstrap >/dev/null ||
      skip "no Debian 12 base image and no mmdebstrap to make one (apt-get install mmdebstrap)"
    say "making the base image $made from Debian's packages (mmdebstrap)"
    local start=$SECONDS
    mmdebstrap --variant=apt --format=tar --quiet \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      bookworm "$work/base.tar" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main" ||
      fail "mmdebstrap could not make the base image"
    "$engine" import --change 'CMD ["bash"]' "$work/base.tar" "$made" >"$work/import.log" 2>&1 ||
      { cat "$work/import.log" >&2; fail "$engine import of the base image"; }
    rm -f "$work/base.tar"
    say "base image made in $((SECONDS - start)) s:" \
      "$(($("$engine" image inspect --format '{{.Size}}' "$made") / 1000000)) MB"
    base=$made
    made_base=$made
  fi
}

build() {
  local hash=$1 ca=${CHURNLAB_PROXY_CA:-/etc/ssl/certs/ca-certificates.crt}
  find_base
  local secret=()
  [[ -s $ca ]] && secret=(--secret "id=proxy-ca,src=$ca")
  make_context
  say "building $image from $base (sources $hash, a clean checkout's files)"
  # The build's network is the machine's own (no bridge, no NAT rules added to the host). podman
  # runs the build's steps in a chroot: no OCI runtime, so no cgroup setup that a machine with
  # hybrid cgroups or without CAP_SYS_RESOURCE refuses. It compiles C++ on every core: under the
  # machine's build lock, timed from when it holds the lock.
  local isolation=()
  [[ $engine == podman ]] && isolation=(--isolation=chroot)
  local waited=$SECONDS
  (
    flock 9
    echo "$SECONDS" >"$work/build.start"
    nice "$engine" build "${isolation[@]}" --network=host -f "$work/context/deploy/Dockerfile" \
      --build-arg "DEBIAN_IMAGE=$base" "${secret[@]}" --label "org.churnlab.source=$hash" \
      --label "org.churnlab.deps=$(deps_hash)" -t "$image" "$work/context"
  ) 9>/tmp/churnlab-build.lock >"$work/build.log" 2>&1 ||
    { tail -n 30 "$work/build.log" >&2; fail "build"; }
  local start
  start=$(cat "$work/build.start")
  say "built in $((SECONDS - start)) s (after $((start - waited)) s waiting for the build lock)"
  # Keep this build's build stage (its package layer and the compiler cache's users) under a tag,
  # and drop the images earlier builds left untagged: only ours carry these labels.
  "$engine" build "${isolation[@]}" --network=host -f "$work/context/deploy/Dockerfile" \
    --build-arg "DEBIAN_IMAGE=$base" "${secret[@]}" --label "org.churnlab.source=$hash" \
    --label "org.churnlab.deps=$(deps_hash)" --target build -t "$build_image" \
    "$work/context" >>"$work/build.log" 2>&1 || fail "tagging the build stage"
  local old
  for label in org.churnlab.stage=build org.churnlab.source; do
    old=$("$engine" images -q --filter dangling=true --filter "label=$label")
    [[ -z $old ]] || "$engine" rmi $old >/dev/null 2>&1 || true
  done
  grep -m1 '^runtime packages:' "$work/build.log" | sed 's/^/image-test: /' || true
}

label() { "$engine" image inspect --format "{{index .Config.Labels \"org.churnlab.$1\"}}" "$image"; }
hash=$(source_hash)
if [[ $rebuild -eq 0 ]] && exists "$image" && [[ $(label source) == "$hash" ]]; then
  say "reusing $image, built from these sources ($hash)"
elif [[ $only_if_cheap -eq 1 ]] && ! { exists "$image" && [[ $(label deps) == "$(deps_hash)" ]]; }; then
  skip "no $image built here from these packages yet: the first build takes about 10 min on 2 cores (the base image with mmdebstrap, every package, all the C++), over the test command's budget; run bash scripts/image-test.sh once (or CHURNLAB_IMAGE_TEST=1 bash scripts/test.sh), and later runs rebuild only what changed"
else
  build "$hash"
fi
size=$("$engine" image inspect --format '{{.Size}}' "$image")
say "image $image: $((size / 1000000)) MB"

# How containers run here: the engine's defaults, else within this machine's own limits (podman
# asks for 1M fds, refused without CAP_SYS_RESOURCE), else also with runc (crun refuses hybrid
# cgroups v1/v2). Sets run_opts; skips, naming the engine's error, when nothing works.
find_run_opts() {
  local nofile nproc tries=()
  nofile=$(ulimit -Hn); [[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
  nproc=$(ulimit -Hu); [[ $nproc == unlimited || $nproc -gt 4096 ]] && nproc=4096
  local limits="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
  tries=("" "$limits")
  [[ $engine == podman ]] && command -v runc >/dev/null && tries+=("--runtime=runc $limits")
  local t first=""
  for t in "${tries[@]}"; do
    # --runtime is a global podman option: it goes before `run`.
    local global=() local_opts=()
    for o in $t; do [[ $o == --runtime=* ]] && global+=("$o") || local_opts+=("$o"); done
    if "$engine" "${global[@]}" run --rm --network=none "${local_opts[@]}" "$image" true \
         >"$work/probe.txt" 2>&1; then
      run_global=("${global[@]}")
      run_opts=("${local_opts[@]}")
      say "containers run here with: ${t:-the engine defaults}"
      return 0
    fi
    [[ -n $first ]] || first=$(tail -n 1 "$work/probe.txt")
  done
  skip "$engine cannot run a container on this machine: $first"
}
run_global=()
run_opts=()
find_run_opts

# The runtime image: every binary's libraries resolve, user 10001, no compiler or package cache.
"$engine" "${run_global[@]}" run --rm --network=none "${run_opts[@]}" "$image" sh -c \
  'for b in /usr/bin/churnlab*; do ldd "$b" | grep "not found" && exit 1; done; id -u; command -v cc c++ g++ npm || true' \
  >"$work/runtime.txt" 2>&1 || fail "a binary's library is missing: $(cat "$work/runtime.txt")"
[[ $(head -n 1 "$work/runtime.txt") == 10001 ]] || fail "the image runs as $(head -n 1 "$work/runtime.txt"), want 10001"
[[ $(wc -l <"$work/runtime.txt") -eq 1 ]] || fail "the runtime image holds build tools: $(tail -n +2 "$work/runtime.txt")"

# The containers: as Kubernetes runs them, in one network namespace of their own.
names=()
# The containers that share the coordinator's network namespace go first: the engine refuses to
# remove a container others depend on.
cleanup_containers() {
  local i
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    "$engine" "${run_global[@]}" rm -f "${names[$i]}" >/dev/null 2>&1 ||
      say "could not remove container ${names[$i]}" >&2
  done
  names=()
}
trap 'cleanup_containers; cleanup' EXIT
prefix=churnlab-it-$$
openssl rand -hex 32 >"$work/token"
mkdir -p "$work/out"
chmod 644 "$work/token"
chown 10001:10001 "$work/out" 2>/dev/null || chmod 777 "$work/out"
run() {  # run NAME NETWORK ARGS...: a detached container like a restricted pod
  local name=$prefix-$1 network=$2
  shift 2
  names+=("$name")
  "$engine" "${run_global[@]}" run -d "${run_opts[@]}" --name "$name" --network="$network" \
    --user 10001:10001 --cap-drop=ALL \
    --security-opt=no-new-privileges --read-only --tmpfs /tmp --tmpfs /var/lib/churnlab \
    -v "$work/token:/etc/churnlab/token/token:ro" -v "$work/out:/out" "$image" "$@" >/dev/null
}
shared=container:$prefix-coordinator
token=--token-file=/etc/churnlab/token/token
run coordinator none churnlab-coordinator --grpc-listen=127.0.0.1:7400 \
  --http-listen=127.0.0.1:7401 --db=/var/lib/churnlab/runs.db "$token"
run target "$shared" churnlab-target --listen=127.0.0.1:9000 --threads=2 --close=client \
  --coordinator=127.0.0.1:7400 --name=target "$token"
run agent1 "$shared" churnlab-agent --coordinator=127.0.0.1:7400 --name=agent1 \
  --source-ips=127.0.0.2,127.0.0.3 "$token"
run agent2 "$shared" churnlab-agent --coordinator=127.0.0.1:7400 --name=agent2 \
  --source-ips=127.0.0.4 "$token"
cli() {
  "$engine" "${run_global[@]}" exec "$prefix-coordinator" churnlab "$@" \
    --coordinator=127.0.0.1:7400 "$token"
}
for _ in $(seq 100); do
  [[ $(cli agents 2>/dev/null | grep -cE '^(agent1|agent2|target) ') -eq 3 ]] && break
  sleep 0.2
done
cli agents >"$work/agents.txt" 2>&1 || true
[[ $(grep -cE '^(agent1|agent2|target) ' "$work/agents.txt") -eq 3 ]] ||
  fail "the agents and the target did not attach: $(cat "$work/agents.txt"; "$engine" logs "$prefix-agent1" 2>&1 | tail -n 5)"
say "coordinator, target and two agents are up, each a container"
cli run --target=127.0.0.1:9000 --rate=200 --duration=3s --report=/out/report.json \
  >"$work/run.txt" 2>&1 || fail "the run exited $?: $(tail -n 20 "$work/run.txt")"

# The report: completed and passed, both agents' sources did the work, the target observed it.
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const problems = [];
if (r.state !== "completed") problems.push(`state ${r.state}`);
if (r.verdict !== "pass") problems.push(`verdict ${r.verdict}`);
const sources = r.agents.flatMap((a) => a.sources.map((s) => s.ip)).sort().join(",");
if (sources !== "127.0.0.2,127.0.0.3,127.0.0.4") problems.push(`sources ${sources}`);
if (!(r.totals.attempted >= 500) || r.totals.succeeded !== r.totals.attempted) problems.push(`totals ${JSON.stringify(r.totals)}`);
if (!(r.observers || []).some((o) => o.name === "target")) problems.push("no observer report from the target");
if (problems.length) { console.error(problems.join("; ")); process.exit(1); }
console.log(`${r.totals.succeeded} of ${r.totals.attempted} connections from ${sources}, verdict ${r.verdict}`);
' "$work/out/report.json" >"$work/check.txt" 2>&1 || fail "report: $(cat "$work/check.txt")"
say "run passed: $(cat "$work/check.txt")"

cleanup_containers

# `churnlab demo` from the installed binary, as a user of the image runs it: not root, so on the
# container's loopback aliases, and --exit so that it stops after the compare.
"$engine" "${run_global[@]}" run --rm --network=none "${run_opts[@]}" --user 10001:10001 \
  --cap-drop=ALL --security-opt=no-new-privileges --read-only --tmpfs /tmp "$image" \
  timeout 120 churnlab demo --exit >"$work/demo.txt" 2>&1 ||
  fail "churnlab demo exited $?: $(tail -n 20 "$work/demo.txt")"
grep -q '^== runs kept in the coordinator' "$work/demo.txt" && [[ $(grep -c ' completed ' "$work/demo.txt") -ge 2 ]] ||
  fail "churnlab demo did not show its two runs: $(tail -n 20 "$work/demo.txt")"
say "churnlab demo ran from the image: $(grep -c ' completed ' "$work/demo.txt") runs completed"

if [[ $remove -eq 1 ]]; then
  "$engine" rmi "$image" $made_base >/dev/null
  "$engine" rmi "$build_image" >/dev/null 2>&1 || true
  say "removed $image $build_image $made_base"
fi
say "passed"
