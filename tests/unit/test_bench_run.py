#!/usr/bin/python3
"""bench/run fails clearly and cleans up: a peer that is not installed, a tool that fails and Ctrl-C
each end it with one line on stderr, the right exit status, no results written and no process left.
The tools are stand-ins (small scripts in a temporary LOCKKIT_BIN), so nothing here needs BPF.

Run: /usr/bin/python3 tests/unit/test_bench_run.py
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench", "run")
BINARIES = ("lockstat", "locktrace", "mklockstat", "parprimes", "lockloop", "mmap_contend", "report_build")


def is_root():
    return os.geteuid() == 0


class BenchRunFailures(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench-run-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        self.doc = os.path.join(self.tmp, "performance.md")
        with open(self.doc, "w") as f:
            f.write("old figures\n")
        for b in BINARIES:
            self.script(b, 'echo "$0: not expected to run" >&2; exit 1')

    def script(self, name, body):
        path = os.path.join(self.bin, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)

    def need_root_and_peers(self):
        missing = [p for p in ("bpftrace", "perf", "nm", "ldd") if not shutil.which(p)]
        reason = "needs root" if not is_root() else (f"needs {', '.join(missing)}" if missing else None)
        if reason:
            if os.environ.get("CI") == "true":
                self.fail(f"bench/run test cannot run under CI: {reason}")
            self.skipTest(reason)

    def run_bench(self, env=None, timeout=60):
        e = dict(os.environ, LOCKKIT_BIN=self.bin, **(env or {}))
        return subprocess.run([BENCH, "--runs", "1", "--doc", self.doc], env=e, capture_output=True, text=True,
                              timeout=timeout)

    def assert_one_line_error(self, p, status, text):
        self.assertEqual(p.returncode, status, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith("round ")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("bench/run: "), lines[0])
        self.assertIn(text, lines[0])
        self.assertNotIn("Traceback", p.stderr)
        self.assertEqual(p.stdout, "")
        with open(self.doc) as f:
            self.assertEqual(f.read(), "old figures\n")

    def test_a_missing_peer_is_named(self):
        # The same PATH without bpftrace: every program of its directories but that one.
        path = os.path.join(self.tmp, "path")
        os.mkdir(path)
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                link = os.path.join(path, name)
                if name != "bpftrace" and not os.path.lexists(link):
                    os.symlink(os.path.join(d, name), link)
        p = self.run_bench(env={"PATH": path})
        self.assert_one_line_error(p, 1, "bpftrace is not installed (scripts/setup installs bpftrace)")

    def test_a_missing_binary_says_to_build(self):
        os.unlink(os.path.join(self.bin, "report_build"))
        p = self.run_bench()
        self.assert_one_line_error(p, 1, "report_build is missing: build first")

    def test_a_failing_tool_is_named_with_its_error(self):
        self.need_root_and_peers()
        self.script("lockstat", 'echo "lockstat: cannot attach uprobe: boom" >&2; exit 1')
        p = self.run_bench()
        self.assert_one_line_error(p, 1, "lockstat -- /bin/true failed (status 1): lockstat: cannot attach uprobe: boom")

    def test_ctrl_c_stops_every_process_it_started(self):
        self.need_root_and_peers()
        # A lockstat that gets through the first check, and a parprimes that never ends (a dynamic
        # program, as bench/run asks ldd which libc it uses): the untraced run is under way at Ctrl-C.
        self.script("lockstat", 'echo "Tracing pid $$ (38 probes on libc.so.6, uprobe-multi links)..." >&2; exit 0')
        os.unlink(os.path.join(self.bin, "parprimes"))
        os.symlink(shutil.which("sleep"), os.path.join(self.bin, "parprimes"))
        e = dict(os.environ, LOCKKIT_BIN=self.bin)
        # Its own process group, so that a test stopped half-way (a failed assertion, a ctest
        # timeout) still takes the stand-in parprimes down with bench/run.
        p = subprocess.Popen([BENCH, "--runs", "1", "--doc", self.doc], env=e, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.addCleanup(self.kill_group, p)
        deadline = time.monotonic() + 60
        while not self.sleepers() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(self.sleepers(), "the untraced parprimes never started")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("bench/run: interrupted; every process it started is stopped, nothing written", err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(self.sleepers(), [])
        with open(self.doc) as f:
            self.assertEqual(f.read(), "old figures\n")

    def kill_group(self, p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        for pid in self.sleepers():
            os.kill(pid, signal.SIGKILL)

    def sleepers(self):
        """Processes running this test's stand-in parprimes (sleep 4 1000000)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if len(args) >= 3 and args[0] == os.path.join(self.bin, "parprimes").encode() and args[1:3] == [b"4", b"1000000"]:
                found.append(int(pid))
        return found


if __name__ == "__main__":
    unittest.main()
