#!/usr/bin/env python3
"""Holds many /api/events streams and slow-header connections open against the coordinator's
HTTP side, and checks that it keeps answering: /api/runs (through curl --max-time 1) while they
are open, 503 for one stream over the cap, slow-header connections closed at the deadline, the
streams still fed afterwards. Prints one line of figures; exits 1 naming the first failure.

usage: http_flood.py HOST:PORT STREAMS SLOW DEADLINE_S [TOKEN]
"""
import resource
import selectors
import socket
import subprocess
import sys
import time

address, streams_n, slow_n, deadline_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(
    sys.argv[4])
token = sys.argv[5] if len(sys.argv) > 5 else ''
host, port = address.rsplit(':', 1)
port = int(port)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
auth = f'Authorization: Bearer {token}\r\n' if token else ''


def fail(message):
    print(f'http_flood: FAIL: {message}')
    sys.exit(1)


def open_stream():
    s = socket.create_connection((host, port))
    s.sendall(f'GET /api/events HTTP/1.1\r\nHost: {address}\r\n{auth}\r\n'.encode())
    return s


def read_until(socks, want, timeout):
    """Reads each socket until its data holds `want` (bytes); returns {sock: data}."""
    sel = selectors.DefaultSelector()
    data = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        data[s] = b''
    waiting = set(socks)
    end = time.monotonic() + timeout
    while waiting and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            data[s] += chunk
            if want in data[s] or not chunk:
                sel.unregister(s)
                waiting.discard(s)
    for s in waiting:
        sel.unregister(s)
    sel.close()
    return data


def curl_runs():
    cmd = ['curl', '-s', '-o', '/dev/null', '--max-time', '1', '-w', '%{http_code} %{time_total}',
           f'http://{address}/api/runs']
    if token:
        cmd[1:1] = ['-H', f'Authorization: Bearer {token}']
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.split()
    return (out[0], float(out[1])) if len(out) == 2 else ('000', 1.0)


streams = [open_stream() for _ in range(streams_n)]
got = read_until(streams, b'event: agents', 30)
ok = sum(1 for d in got.values() if d.startswith(b'HTTP/1.1 200') and b'event: agents' in d)
if ok != streams_n:
    fail(f'{ok} of {streams_n} event streams opened')

slow = []
slow_started = time.monotonic()
for _ in range(slow_n):
    s = socket.create_connection((host, port))
    s.sendall(f'GET /api/runs HTTP/1.1\r\nHost: {address}\r\nX-Slow: '.encode())
    slow.append(s)

latencies = []
for _ in range(5):
    code, seconds = curl_runs()
    if code != '200':
        fail(f'/api/runs answered {code} (or not within 1 s) with the streams and slow clients open')
    latencies.append(seconds)
    # The slow clients trickle a byte each, so that only the whole-request deadline can end them.
    for s in slow:
        try:
            s.send(b'x')
        except OSError:
            pass
    time.sleep(0.2)

extra = socket.create_connection((host, port))
extra.sendall(f'GET /api/events HTTP/1.1\r\nHost: {address}\r\n{auth}\r\n'.encode())
answer = read_until([extra], b'\r\n\r\n', 5)[extra]
if not answer.startswith(b'HTTP/1.1 503'):
    fail(f'stream {streams_n + 1} over the cap got {answer[:60]!r}, wanted 503')
extra.close()

closed_after = {}
while len(closed_after) < slow_n and time.monotonic() - slow_started < deadline_s + 5:
    for s in slow:
        if s in closed_after:
            continue
        try:
            s.setblocking(False)
            if s.recv(1) == b'':
                closed_after[s] = time.monotonic() - slow_started
                continue
        except BlockingIOError:
            pass
        except OSError:
            closed_after[s] = time.monotonic() - slow_started
            continue
        try:
            s.send(b'x')
        except OSError:
            closed_after[s] = time.monotonic() - slow_started
    time.sleep(0.25)
if len(closed_after) != slow_n:
    fail(f'{slow_n - len(closed_after)} slow-header connections still open '
         f'{deadline_s + 5:.0f} s after they started (deadline {deadline_s} s)')
first, last = min(closed_after.values()), max(closed_after.values())
if first < deadline_s - 0.5:
    fail(f'a slow-header connection was closed after {first:.1f} s, before the deadline')

fed = read_until(streams, b'event: agents', 5)
alive = sum(1 for d in fed.values() if b'event: agents' in d)
if alive != streams_n:
    fail(f'only {alive} of {streams_n} streams still receive events')
for s in streams:
    s.close()
print(f'http_flood: {streams_n} streams + {slow_n} slow-header connections: /api/runs in '
      f'{min(latencies) * 1000:.0f}-{max(latencies) * 1000:.0f} ms; stream {streams_n + 1} got 503; '
      f'slow clients closed {first:.1f}-{last:.1f} s after they started (deadline {deadline_s} s); '
      f'all streams still fed')
