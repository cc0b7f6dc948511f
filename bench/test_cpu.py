#!/usr/bin/python3
"""Which tests load the CPU: runs a command (ctest, as scripts/test.sh runs it) and charges the
CPU time of every process below it to the test it descends from, by sampling /proc.

Usage: bench/test_cpu.py [--every=SECONDS] -- ctest -j 7 --timeout 300     (in build/)

Every --every seconds (default 0.5) it reads each process's user+system time, parent and start
time from /proc/PID/stat; a process's growth since the last sample is charged to the child of the
command it descends from (one ctest test: a gtest filter or a script with its part), remembered
by process (pid and start time, so a reused pid is a new process) so that it stays charged there
once its parent has gone. At the end it prints, busiest first, each test's CPU seconds, its
seconds alive and their ratio (the CPUs it kept busy on average). Missed: a process's last
interval before it exits, a process that lived less than one interval, a process first seen after
its parent had gone, and the kernel's work in its own threads (the namespaces' teardown, softirq
outside a process), so the figures are a floor; vmstat beside it gives the machine's total.
tests/CMakeLists.txt's PROCESSORS come from it.
"""
import os
import subprocess
import sys
import time


def read_stat(pid):
    """(parent pid, user+system clock ticks, start time) of a live process, or None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])


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
    forked = test_name(" ".join(args[1:]))  # a child's name until it has exec'd its test
    seen = {}    # (pid, start) -> [its test's key, ticks at its last sample]
    tests = {}   # (pid, start) of a child of the command -> [name, ticks, first seen, last seen]
    while command.poll() is None:
        now = time.monotonic()
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = read_stat(int(entry))
                if stat is not None:
                    stats[int(entry)] = stat
        for pid, (parent, used, start) in stats.items():
            process = (pid, start)
            if process not in seen:
                top, hops = pid, 0
                while top in stats and stats[top][0] != command.pid and hops < 64:
                    top, hops = stats[top][0], hops + 1
                if top not in stats or stats[top][0] != command.pid:
                    continue  # not below the command (or its parent already gone)
                key = (top, stats[top][2])
                if key not in tests:
                    tests[key] = [test_name(command_line(top)), 0, now, now]
                seen[process] = [key, 0]
            key, before = seen[process]
            if process == key and tests[key][0] == forked:
                tests[key][0] = test_name(command_line(pid))  # seen between fork and exec
            tests[key][1] += used - before
            tests[key][3] = now
            seen[process][1] = used
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
