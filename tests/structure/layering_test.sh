#!/usr/bin/env bash
# The modules' dependencies run one way (DESIGN.md, "Parts, and which way they depend"):
#   common <- proto <- host, analysis, dashboard, http <- agent, coordinator, target, cli
# Every #include "module/..." in a module's sources must name a module it may depend on; a
# wrong-way include fails this test (and with it the test command), naming the file and line.
# Usage: layering_test.sh SOURCE_DIR
set -euo pipefail
cd "${1:?usage: layering_test.sh SOURCE_DIR}"
declare -A allowed=(
  [common]="common"
  [proto]="common proto churnlab"
  [host]="common proto churnlab host"
  [analysis]="common proto churnlab analysis"
  [dashboard]="common proto churnlab dashboard"
  [http]="common proto churnlab http"
  [agent]="common proto churnlab host agent"
  [target]="common proto churnlab host target"
  # host/ for its own socket table: the gRPC door counts its connections by sock_diag.
  [coordinator]="common proto churnlab host analysis dashboard http coordinator"
  [cli]="common proto churnlab analysis dashboard cli"
)
bad=0
for module in "${!allowed[@]}"; do
  while IFS=: read -r file line text; do
    [[ $text =~ ^\#include\ \"([^/\"]+)/ ]] || continue  # no folder: a header beside it
    folder=${BASH_REMATCH[1]}
    [[ -n ${allowed[$folder]+set} ]] || continue   # a library's (absl/, grpcpp/, ...)
    if [[ " ${allowed[$module]} " != *" $folder "* ]]; then
      echo "$file:$line: $module/ may not include $folder/ ($text)"
      bad=$((bad + 1))
    fi
  done < <(grep -Hn '^#include "' "$module"/*.cc "$module"/*.h 2>/dev/null || true)
done
if ((bad > 0)); then
  echo "layering_test: $bad include(s) run the wrong way"
  exit 1
fi
echo "layering_test: every include runs one way (${#allowed[@]} modules)"
