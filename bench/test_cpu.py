#!/usr/bin/python3
"""Which tests load the CPU: runs a command (ctest, as scripts/test.sh runs it) and charges the
CPU time of every process below it to the test it descends from, by sampling /proc.

Usage: bench/test_cpu.py [--every=SECONDS] -- ctest -j 7 --timeout 300     (in build/)

Every --every seconds (default 0.5) it reads each process's user+system time and its parent from
/proc/PID/stat; a process's growth since the last sample is charged to the child of the command
it descends from (one ctest test: a gtest filter or a script with its part). At the end it prints,
busiest first, each test's CPU seconds, its seconds alive and their ratio (the CPUs it kept busy
on average). A process that lived less than one interval is missed, and so is the kernel's work
in its own threads (the namespaces' teardown, softirq outside a process), so the figures are a
floor; vmstat beside it gives the machine's total. tests/CMakeLists.txt's PROCESSORS come from it.
"""
import os
import subprocess
import sys
import time


def read_stat(pid):
    """(parent pid, user+system clock ticks) of a live process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), int(fields[11]) + int(fields[12])


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ").strip()
    except OSError:
        return "?"


def test_name(argv):
    for arg in argv.split():
        if arg.startswith("--gtest_filter="):
            return arg.split("=", 1)[1]
    return argv[:120]


def main():
    args = sys.argv[1:]
    every = 0.5
    if args and args[0].startswith("--every="):
        every = float(args.pop(0).split("=", 1)[1])
        if not 0.05 <= every <= 10:
            sys.exit(f"test_cpu: --every={every} is not in [0.05, 10] seconds")
    if not args or args[0] != "--" or len(args) < 2:
        sys.exit("usage: bench/test_cpu.py [--every=SECONDS] -- COMMAND...")
    tick = os.sysconf("SC_CLK_TCK")
    command = subprocess.Popen(args[1:])
    seen = {}    # pid -> ticks at its last sample
    tests = {}   # pid of a child of the command -> [name, ticks, first seen, last seen]
    while command.poll() is None:
        now = time.monotonic()
        parents, ticks = {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = read_stat(int(entry))
                if stat is not None:
                    parents[int(entry)], ticks[int(entry)] = stat
        for pid, used in ticks.items():
            top, hops = pid, 0
            while parents.get(top) not in (command.pid, None) and hops < 64:
                top, hops = parents[top], hops + 1
            if parents.get(top) != command.pid:
                continue
            test = tests.setdefault(top, [test_name(command_line(top)), 0, now, now])
            test[1] += used - seen.get(pid, 0)
            test[3] = now
            seen[pid] = used
        time.sleep(every)
    by_name = {}
    for name, used, first, last in tests.values():
        total = by_name.setdefault(name, [0, 0.0])
        total[0] += used / tick
        total[1] += last - first + every
    print(f"{'CPU s':>7} {'alive s':>8} {'CPUs':>5}  test")
    for name, (cpu, alive) in sorted(by_name.items(), key=lambda kv: -kv[1][0]):
        print(f"{cpu:7.1f} {alive:8.1f} {cpu / alive:5.2f}  {name}")
    print(f"{sum(c for c, _ in by_name.values()):7.1f} in all")
    sys.exit(command.returncode)


if __name__ == "__main__":
    main()
