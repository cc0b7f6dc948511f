"""What the hostile peers share: churnlab's protobuf and gRPC modules, generated from proto/ with
Debian's protoc and grpc_python_plugin into a scratch directory, and small helpers.

Run with Debian's python3 (/usr/bin/python3), which has python3-grpcio and python3-protobuf.
"""
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_modules():
    """Generates churnlab/v1/*_pb2(_grpc).py once per process and imports them."""
    out = tempfile.mkdtemp(prefix="churnlab-pb-")
    protos = sorted(
        os.path.join("churnlab", "v1", f)
        for f in os.listdir(os.path.join(ROOT, "proto", "churnlab", "v1"))
        if f.endswith(".proto"))
    subprocess.run(
        ["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out,
         "--grpc_python_out", out, "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
         *protos], check=True)
    sys.path.insert(0, out)
    from churnlab.v1 import agent_pb2, agent_pb2_grpc, telemetry_pb2, spec_pb2  # noqa: E402
    return agent_pb2, agent_pb2_grpc, telemetry_pb2, spec_pb2


class Checks:
    """Named checks; every one is printed, and the script exits 1 if any failed."""

    def __init__(self, name):
        self.name = name
        self.failed = []

    def check(self, ok, what):
        print(f"   {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failed.append(what)

    def finish(self):
        if self.failed:
            print(f"{self.name}: FAILED: {len(self.failed)} check(s): {'; '.join(self.failed)}")
            sys.exit(1)
        print(f"{self.name}: passed")


def metric(http, name):
    """A counter of the coordinator's /metrics (its only sample), or None."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Link:
    """One Attach stream: send() queues a message, messages() holds what came back, and
    status() waits for the stream's end: (code name, details), or None while it is open."""

    def __init__(self, grpc, stub):
        import queue
        import threading
        self._grpc = grpc
        self._out = queue.Queue()
        self.received = queue.Queue()
        self._status = None
        self._ended = threading.Event()
        self._calls = stub.Attach(iter(self._out.get, None))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for message in self._calls:
                self.received.put(message)
            self._status = ("OK", "")
        except self._grpc.RpcError as e:
            self._status = (e.code().name, e.details() or "")
        self._ended.set()

    def send(self, message):
        self._out.put(message)

    def close(self):
        self._out.put(None)

    def status(self, timeout=10):
        self._ended.wait(timeout)
        return self._status

    def next_of(self, field, timeout=15):
        """The next received message whose body is `field` (skipping others), or None."""
        import queue
        import time
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                m = self.received.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                return None
            if m.WhichOneof("body") == field:
                return getattr(m, field)
        return None
