"""Applies each one-decision change of mutations.py to the source tree in turn, rebuilds, runs
the tests that must catch it, and puts the file back (always, also on Ctrl-C). Prints each
change as caught or SURVIVED and the score; exits 1 when any survived.

Not part of the test command (each change rebuilds): run it after changing a decision or its
tests, and record the score in bench/RESULTS.md.
Usage: python3 tests/mutation/run.py [BUILD_DIR] [NAME_SUBSTRING]
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from mutations import MUTATIONS  # noqa: E402

root = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
build = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build"))
only = sys.argv[2] if len(sys.argv) > 2 else ""


def sh(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def build_all():
    r = sh(["cmake", "--build", build, "-j2"])
    return r.returncode == 0, r.stdout[-2000:]


caught, survived, broken = [], [], []
for m in MUTATIONS:
    if only and only not in m["name"]:
        continue
    path = os.path.join(root, m["file"])
    original = open(path).read()
    count = original.count(m["old"])
    if count != 1:
        broken.append(f'{m["name"]}: the text to change is in {m["file"]} {count} times, not once')
        print(f"   BROKEN   {broken[-1]}", flush=True)
        continue
    try:
        with open(path, "w") as f:
            f.write(original.replace(m["old"], m["new"]))
        ok, log = build_all()
        if not ok:
            broken.append(f'{m["name"]}: does not build: {log[-300:]}')
            print(f"   BROKEN   {broken[-1]}", flush=True)
            continue
        r = sh(["ctest", "--test-dir", build, "-R", m["tests"], "--timeout", "90"])
        ran = "No tests were found" not in r.stdout
        skipped = r.returncode == 0 and "Skipped" in r.stdout
        if not ran or skipped:
            why = "no test matches" if not ran else "skipped here (root? packages?):"
            broken.append(f'{m["name"]}: {why} {m["tests"]}')
            print(f"   BROKEN   {broken[-1]}", flush=True)
        elif r.returncode != 0:
            caught.append(m["name"])
            print(f'   caught   {m["name"]} ({m["tests"]})', flush=True)
        else:
            survived.append(m["name"])
            print(f'   SURVIVED {m["name"]} ({m["tests"]} all passed)', flush=True)
    finally:
        with open(path, "w") as f:
            f.write(original)
build_all()
total = len(caught) + len(survived) + len(broken)
print(f"mutation score: {len(caught)} of {total} changes caught"
      f"{f', {len(broken)} could not be tried' if broken else ''}")
sys.exit(0 if not survived and not broken else 1)
