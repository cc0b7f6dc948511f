#!/usr/bin/env bash
# No function past 60 lines and no file past 500 without its reason beside it (a comment with
# "Long:" just above the function, or in the file's opening comment). Functions are found the
# way this tree is formatted (clang-format): a definition starts at column 0 and its body ends
# at the next "}" at column 0. Tests are exempt: their tables of cases are long by nature.
# Usage: length_test.sh SOURCE_DIR
set -euo pipefail
cd "${1:?usage: length_test.sh SOURCE_DIR}"
files=()
for file in {common,proto,host,analysis,dashboard,agent,coordinator,target,cli,bench}/*.{cc,h}; do
  [[ -e $file ]] && files+=("$file")
done
# One awk over every file (a process or four per file made this test take 5-8 s under ctest).
reports=$(awk '
  function file_done() {
    if (file != "" && lines > 500 && opening !~ /Long:/) {
      printf "%s: %d lines, and its opening comment gives no reason (\"Long: ...\")\n", file, lines
    }
  }
  FNR == 1 { file_done(); file = FILENAME; opening = ""; comment = ""; start = 0 }
  { lines = FNR; if (FNR <= 5) opening = opening $0 }
  /^\/\// { comment = comment $0; next }
  /^template/ { next }  # its comment stands above the template line
  /^[A-Za-z].*;$/ { if (!start) comment = ""; next }  # a declaration, not a definition
  /^(namespace|#|using|class|struct|enum|static_assert|constexpr|\}|$| )/ {
    if ($0 ~ /^}/ && start && FNR - start > 60 && reason !~ /Long:/) {
      printf "%s:%d: %d lines, and no \"// Long: ...\" above it says why\n", file, start, FNR - start
    }
    if ($0 ~ /^}/) start = 0
    comment = ""; next
  }
  /^[A-Za-z].*\}$/ { if (!start) comment = ""; next }  # a definition on one line
  /^[A-Za-z]/ { if (!start) { start = FNR; reason = comment }; comment = "" }
  END { file_done() }
' "${files[@]}")
if [[ -n $reports ]]; then
  echo "$reports"
  echo "length_test: $(wc -l <<<"$reports") long function(s) or file(s) without a reason" >&2
  exit 1
fi
echo "length_test: every function within 60 lines and file within 500, or its reason written"
