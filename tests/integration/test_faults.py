#!/usr/bin/env python3
"""Fault suite: how lockstat, locktrace and mklockstat behave when things go wrong.

Bad input, a target that exits, signals to the tool, a killed tracer, full stack storage, tracefs not
mounted, no kprobes, no root, another tracer on the same events, a failed run next to an existing
output file, the traced command's exit status, and memory over many intervals. After every case no
uprobe event may be left in tracefs (the whole of uprobe_events is compared with its content before
the case). Every process is bounded by a timeout and killed at the end of its case.

Tolerances: a loop's rate after the tool has gone must be at least half its rate before the tool
attached (a uprobe left behind slows lockloop's mutex loop a hundredfold or more); the tool's RSS
at the end of a run may exceed its RSS at a third of the run by at most 20 % plus 4 MiB."""
import csv
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import unittest

import lockkit_testlib as lk

RATE_KEEP = 0.5
RSS_GROWTH = 0.20
RSS_SLACK_KB = 4096
NOBODY = 65534
CRASH_MARKERS = ("Traceback", "terminate called", "Aborted", "Segmentation fault", "core dumped")


def uprobe_events():
    root = lk.tracefs_root()
    if root is None:
        return ""
    with open(os.path.join(root, "uprobe_events")) as f:
        return f.read()


def bcc_event_count(text):
    return sum(1 for line in text.splitlines() if "_bcc_" in line)


def kernel_thread_pid():
    """A kernel thread (PF_KTHREAD), e.g. kthreadd."""
    for name in sorted(os.listdir("/proc"), key=lambda n: (len(n), n)):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[6]) & 0x00200000:  # flags, field 9 of stat
            return int(name)
    raise AssertionError("no kernel thread found")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def perf_count(event, seconds=2):
    """What `perf stat -e EVENT -a -- sleep SECONDS` counted system-wide."""
    r = subprocess.run(["perf", "stat", "-x,", "-e", event, "-a", "--", "sleep", str(seconds)],
                       capture_output=True, text=True, timeout=60 + seconds)
    if r.returncode != 0:
        raise AssertionError(f"perf stat -e {event} failed ({r.returncode}): {r.stderr}")
    for line in r.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] == event:
            return int(fields[0]) if fields[0].isdigit() else 0
    raise AssertionError(f"perf stat printed no count for {event}: {r.stderr}")


class Loop:
    """lockloop MODE N: reports its loop rate every 100 ms until its stdin closes."""

    def __init__(self, test, mode, threads=1):
        self.p = subprocess.Popen([lk.binary("lockloop"), mode, str(threads)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        test.addCleanup(self.close)
        first = self.p.stdout.readline()
        if not first.startswith("pid "):
            raise AssertionError(f"lockloop did not start: {first!r}")
        self.pid = int(first.split()[1])
        self.windows = []  # (time the line arrived, ops, ns)
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "ops":
                with self.lock:
                    self.windows.append((time.monotonic(), int(parts[1]), int(parts[3])))

    def rate(self, seconds=1.0):
        """Loop iterations per second over the windows that end in the next SECONDS."""
        start = time.monotonic()
        time.sleep(seconds)
        with self.lock:
            w = [x for x in self.windows if x[0] > start]
        if not w:
            raise AssertionError("lockloop reported nothing")
        return sum(x[1] for x in w) / (sum(x[2] for x in w) / 1e9)

    def rate_after_tracer(self, before, tries=3):
        """The best of up to TRIES one-second rates, stopping once one reaches RATE_KEEP x BEFORE: a
        probe left behind slows every try; a busy neighbour on the machine rarely slows all."""
        best = 0.0
        for _ in range(tries):
            best = max(best, self.rate())
            if best >= RATE_KEEP * before:
                break
        return best

    def running(self):
        return self.p.poll() is None

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
        self.reader.join(timeout=5)
        self.p.stdout.close()


class FaultTest(unittest.TestCase):
    """Every case: BPF must be usable (a failure under CI=true otherwise), a private temporary
    directory, and afterwards tracefs' uprobe_events exactly as before the case."""

    @classmethod
    def setUpClass(cls):
        cls.uprobe_events_at_start = uprobe_events() if not lk.bpf_unavailable_reason() else ""
        cls.bcc_events_at_start = bcc_event_count(cls.uprobe_events_at_start)

    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.mkdtemp(prefix="lockkit-faults.")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.events_before = uprobe_events()
        # Runs after every other cleanup (cleanups run last-in first-out): processes are gone.
        self.addCleanup(self.check_no_uprobe_event_left)

    def check_no_uprobe_event_left(self):
        after = uprobe_events()
        new = sorted(set(after.splitlines()) - set(self.events_before.splitlines()))
        self.assertEqual(new, [], "uprobe events left behind in tracefs")
        self.assertEqual(bcc_event_count(after), bcc_event_count(self.events_before))
        self.assertEqual(after, self.events_before)

    # --- helpers ---

    def run_tool(self, tool, *args, timeout=120, **kw):
        return subprocess.run([lk.binary(tool), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, **kw)

    def start_tool(self, tool, *args, ready="Tracing"):
        """Starts the tool with stdout to a file (a pipe nobody reads could stall it) and waits
        until it announces tracing. finish(p) returns its exit status and stdout."""
        out_path = os.path.join(self.tmp, f"stdout.{tool}.{time.monotonic_ns()}")
        with open(out_path, "w") as out:
            p = lk.Proc([lk.binary(tool), *map(str, args)], stdout=out, tmpdir=self.tmp)
        p.out_path = out_path
        self.addCleanup(self._kill, p.p)
        p.wait_for_stderr(ready)
        return p

    @staticmethod
    def finish(p, timeout=120):
        rc, _ = p.finish(timeout=timeout)
        with open(p.out_path) as f:
            return rc, f.read()

    @staticmethod
    def _kill(popen):
        if popen.poll() is None:
            popen.kill()
        popen.wait()

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.addCleanup(self._kill, p)
        return p

    def assert_one_error_line(self, r, tool, codes=(1, 2), text=None):
        self.assertIn(r.returncode, codes, r.stderr)
        self.assertEqual(r.stdout, "", "nothing on stdout for a failed run")
        errors = [l for l in r.stderr.splitlines() if l.startswith(f"{tool}: error: ")]
        self.assertEqual(len(errors), 1, f"want exactly one '{tool}: error:' line:\n{r.stderr}")
        for marker in CRASH_MARKERS:
            self.assertNotIn(marker, r.stderr)
        if text is not None:
            self.assertIn(text, errors[0])
        return errors[0]


# ---------------------------------------------------------------------------------------------
# Bad input: exit 1 (runtime) or 2 (usage) with one clear "<tool>: error:" line, no traceback.
# Each row: test name, tool, arguments (callables get the fixture), accepted exit codes, text the
# error line must contain.

class Fixture:
    """A process with a second thread, a reaped pid, a kernel thread, an unwritable path, files."""

    def __init__(self, tmp):
        self.p = subprocess.Popen(
            ["python3", "-c", "import os, sys, threading, time\n"
             "t = threading.Thread(target=time.sleep, args=(300,), daemon=True); t.start()\n"
             "print(os.getpid(), t.native_id, flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid, self.tid = (int(x) for x in self.p.stdout.readline().split())
        self.dead = lk.unused_pid()
        self.kthread = kernel_thread_pid()
        self.unwritable = "/nonexistent-dir/out"
        self.not_elf = os.path.join(tmp, "not-an-elf.so")
        with open(self.not_elf, "w") as f:
            f.write("this is text, not an ELF file\n")
        self.no_pthread = shutil.which("true")

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)
        self.p.stdout.close()


BAD_INPUT = [
    # lockstat
    ("lockstat_nonexistent_pid", "lockstat", lambda f: ["-p", f.dead, "1"], (1,), "no process with pid"),
    ("lockstat_thread_id_as_pid", "lockstat", lambda f: ["-p", f.tid, "1"], (1, 2), "is a thread of process"),
    ("lockstat_non_numeric_pid", "lockstat", lambda f: ["-p", "abc", "1"], (2,), "invalid pid"),
    ("lockstat_kernel_thread_pid", "lockstat", lambda f: ["-p", f.kthread, "1"], (1, 2), "kernel thread"),
    ("lockstat_zero_duration", "lockstat", lambda f: ["-p", f.pid, "0"], (2,), "invalid duration"),
    ("lockstat_negative_duration", "lockstat", lambda f: ["-p", f.pid, "-1"], (2,), "-1"),
    ("lockstat_huge_duration", "lockstat", lambda f: ["-p", f.pid, "1e30"], (2,), "invalid duration"),
    ("lockstat_zero_interval", "lockstat", lambda f: ["-p", f.pid, "-i", "0", "1"], (2,), "invalid interval"),
    ("lockstat_negative_interval", "lockstat", lambda f: ["-p", f.pid, "-i", "-2", "1"], (2,), "interval"),
    ("lockstat_huge_interval", "lockstat", lambda f: ["-p", f.pid, "-i", "1e30", "1"], (2,), "invalid interval"),
    ("lockstat_sample_zero", "lockstat", lambda f: ["-p", f.pid, "--sample", "0", "1"], (2,), "invalid --sample"),
    ("lockstat_sample_negative", "lockstat", lambda f: ["-p", f.pid, "--sample", "-5", "1"], (2,), "invalid --sample"),
    ("lockstat_sample_above_100", "lockstat", lambda f: ["-p", f.pid, "--sample", "100.5", "1"], (2,),
     "invalid --sample"),
    ("lockstat_unwritable_json", "lockstat", lambda f: ["--json", f.unwritable, "-p", f.pid, "1"], (1,),
     "cannot write"),
    ("lockstat_unwritable_folded", "lockstat", lambda f: ["--folded", "wait", f.unwritable, "-p", f.pid, "1"],
     (1,), "cannot write"),
    ("lockstat_binary_not_elf", "lockstat", lambda f: ["--binary", f.not_elf, "-p", f.pid, "1"], (1, 2), "ELF"),
    ("lockstat_binary_without_pthread", "lockstat", lambda f: ["--binary", f.no_pthread, "-p", f.pid, "1"],
     (1, 2), "pthread_mutex_lock"),
    ("lockstat_pid_and_command", "lockstat", lambda f: ["-p", f.pid, "--", "true"], (2,), "not both"),
    ("lockstat_missing_command", "lockstat", lambda f: ["--", "/nonexistent/program"], (2,), "no such file"),
    ("lockstat_nothing_to_trace", "lockstat", lambda f: [], (2,), "nothing to trace"),
    # locktrace
    ("locktrace_nonexistent_pid", "locktrace", lambda f: ["-p", f.dead, "1"], (1,), "no process with pid"),
    ("locktrace_thread_id_as_pid", "locktrace", lambda f: ["-p", f.tid, "1"], (1, 2), "is a thread of process"),
    ("locktrace_non_numeric_pid", "locktrace", lambda f: ["-p", "abc", "1"], (2,), "invalid pid"),
    ("locktrace_zero_duration", "locktrace", lambda f: ["-p", f.pid, "0"], (2,), "invalid duration"),
    ("locktrace_negative_duration", "locktrace", lambda f: ["-p", f.pid, "--", "-5"], (2,), "invalid duration"),
    ("locktrace_huge_duration", "locktrace", lambda f: ["-p", f.pid, "1e30"], (2,), "invalid duration"),
    ("locktrace_unwritable_output", "locktrace", lambda f: ["-o", f.unwritable, "-p", f.pid, "1"], (1,),
     "cannot write"),
    ("locktrace_unwritable_hist", "locktrace", lambda f: ["--hist", f.unwritable, "-p", f.pid, "1"], (1,),
     "cannot write"),
    ("locktrace_tid_of_another_pid", "locktrace", lambda f: ["-p", f.pid, "-t", "1", "1"], (2,), "belongs to"),
    ("locktrace_bad_format", "locktrace", lambda f: ["--format", "xml", "-p", f.pid, "1"], (2,), "xml"),
    # mklockstat
    ("mklockstat_nonexistent_pid", "mklockstat", lambda f: ["-p", f.dead, "--time", "1"], (1,),
     "no process with pid"),
    ("mklockstat_thread_id_as_pid", "mklockstat", lambda f: ["-p", f.tid, "--time", "1"], (1, 2),
     "is a thread of process"),
    ("mklockstat_non_numeric_pid", "mklockstat", lambda f: ["-p", "abc", "--time", "1"], (2,), "invalid pid"),
    ("mklockstat_negative_time", "mklockstat", lambda f: ["--time", "-1"], (2,), "invalid --time"),
    ("mklockstat_huge_time", "mklockstat", lambda f: ["--time", "1e30"], (2,), "invalid --time"),
    ("mklockstat_zero_period", "mklockstat", lambda f: ["--period", "0", "--time", "1"], (2,), "invalid --period"),
    ("mklockstat_negative_period", "mklockstat", lambda f: ["--period", "-50", "--time", "1"], (2,), "period"),
    ("mklockstat_huge_period", "mklockstat", lambda f: ["--period", "99999999999", "--time", "1"], (2,),
     "invalid --period"),
    ("mklockstat_unwritable_output", "mklockstat", lambda f: ["-o", f.unwritable, "--time", "1"], (1,),
     "cannot write"),
    ("mklockstat_tid_of_another_pid", "mklockstat", lambda f: ["-p", f.pid, "-t", "1", "--time", "1"], (1, 2),
     "belongs to"),
    ("mklockstat_bad_backend", "mklockstat", lambda f: ["--backend", "ftrace", "--time", "1"], (2,),
     "invalid --backend"),
]


class BadInput(FaultTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fixture_dir = tempfile.mkdtemp(prefix="lockkit-faults-fixture.")
        cls.fixture = Fixture(cls.fixture_dir)

    @classmethod
    def tearDownClass(cls):
        cls.fixture.close()
        shutil.rmtree(cls.fixture_dir, ignore_errors=True)

    def check_bad_input(self, tool, args, codes, text):
        r = self.run_tool(tool, *args(self.fixture), timeout=60)
        self.assert_one_error_line(r, tool, codes, text)
        self.assertNotIn("Tracing", r.stderr, "nothing may be traced on bad input")


def _bad_input_test(tool, args, codes, text):
    def test(self):
        self.check_bad_input(tool, args, codes, text)
    return test


for _name, _tool, _args, _codes, _text in BAD_INPUT:
    setattr(BadInput, f"test_{_name}_is_one_clear_error", _bad_input_test(_tool, _args, _codes, _text))


# ---------------------------------------------------------------------------------------------

class TargetExits(FaultTest):
    """The target ends during the run: the tool ends too, with its final report, symbolized."""

    def test_lockstat_reports_symbolized_stacks_of_a_process_that_exited(self):
        record = os.path.join(self.tmp, "record.json")
        out_json = os.path.join(self.tmp, "out.json")
        work = self.spawn([lk.binary("lockwork"), record, "--wait-stdin"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
        self.assertTrue(work.stdout.readline().startswith("pid "))
        tool = self.start_tool("lockstat", "-p", work.pid, "--json", out_json)
        work.stdin.write("go\n")
        work.stdin.close()
        self.assertEqual(work.wait(timeout=120), 0)
        work.stdout.close()
        rc, out = self.finish(tool)
        self.assertEqual(rc, 0, tool.stderr())
        self.assertIn("target exited", tool.stderr())
        self.assertIn("final report", out)
        rec = lk.load_json(record)
        locks = {int(l["address"], 16): l for l in lk.load_json(out_json)["locks"]}
        orders = locks[int(rec["locks"]["orders_lock"], 16)]
        self.assertEqual(orders["name"], "orders_lock")
        frames = orders["stacks"][0]["frames"]
        self.assertTrue(any(f.startswith("place_order+") for f in frames), frames)
        self.assertFalse([f for f in frames if "UNKNOWN" in f], frames)

    def test_locktrace_reports_symbolized_stacks_of_a_process_that_exited(self):
        record = os.path.join(self.tmp, "rec.json")
        work = self.spawn([lk.binary("futex_scenarios"), record, "block", "3", "5"], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True)
        tool = self.start_tool("locktrace", "-p", work.pid, "--format", "json")
        work.stdin.write("go\n")
        work.stdin.close()
        self.assertEqual(work.wait(timeout=120), 0)
        rc, out = self.finish(tool)  # no duration: it ends because the process did
        self.assertEqual(rc, 0, tool.stderr())
        rec = lk.load_json(record)
        rows = [r for r in json.loads(out)["rows"] if r["tid"] == rec["waiter_tid"]]
        self.assertTrue(rows, out)
        self.assertIn("block_on_word", rows[0]["stack"])
        self.assertFalse([f for f in rows[0]["stack"] if "UNKNOWN" in f], rows[0]["stack"])


# ---------------------------------------------------------------------------------------------

class Signals(FaultTest):
    """SIGINT, SIGTERM or SIGHUP to the tool: final report, exit 0, every probe gone, and the target
    loops as fast afterwards as before the tool attached."""

    def check(self, tool, mode, sig, args, check_report):
        loop = Loop(self, mode, threads=2 if mode == "mmap" else 1)
        before = loop.rate()
        p = self.start_tool(tool, *args(loop.pid))
        during = loop.rate(0.5)
        p.p.send_signal(sig)
        rc, out = self.finish(p)
        self.assertEqual(rc, 0, p.stderr())
        check_report(out, p.stderr(), loop.pid)
        self.assertTrue(loop.running(), "the target must keep running")
        after = loop.rate_after_tracer(before)
        print(f"\n  {mode} loop: {before:.0f}/s before, {during:.0f}/s traced, {after:.0f}/s after",
              end=" ", flush=True)
        self.assertGreaterEqual(after, RATE_KEEP * before, "the target is slower after the tool left")

    @staticmethod
    def lockstat_args(pid):
        return ["-p", pid]

    def lockstat_report(self, out, err, pid):
        self.assertIn("final report", out)
        self.assertIn("loop_lock", out)

    @staticmethod
    def locktrace_args(pid):
        return ["-p", pid]

    def locktrace_report(self, out, err, pid):
        rows = list(csv.reader(io.StringIO(out)))
        self.assertTrue(rows and rows[0][:3] == ["pid", "tid", "addr"], out[:200])
        wakes = [r for r in rows[1:] if r[0] == str(pid) and int(r[9]) > 0]
        self.assertTrue(wakes, "no row with the loop's futex wakes")

    @staticmethod
    def mklockstat_args(pid):
        return ["-p", pid, "--time", "0"]

    def mklockstat_report(self, out, err, pid):
        self.assertRegex(err, r"mklockstat: .* after [0-9.]+ s: \d+ samples in \d+ periods")
        for line in out.splitlines():
            self.assertIn(line.split(",")[0], ("s", "t"), line)


def _signal_test(tool, mode, sig):
    def test(self):
        self.check(tool, mode, sig, getattr(Signals, f"{tool}_args"), getattr(self, f"{tool}_report"))
    return test


for _tool, _mode in (("lockstat", "mutex"), ("locktrace", "futex"), ("mklockstat", "mmap")):
    for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        setattr(Signals, f"test_{_tool}_{_sig.name.lower()}_reports_exits_0_and_detaches",
                _signal_test(_tool, _mode, _sig))


class TracerKilled(FaultTest):
    """SIGKILL of the tracer: the target runs on unharmed at full speed, no probe is left."""

    def check(self, tool, mode, args):
        loop = Loop(self, mode)
        before = loop.rate()
        p = self.start_tool(tool, *args(loop.pid))
        loop.rate(0.5)
        p.p.kill()
        p.finish(timeout=30)
        time.sleep(0.5)  # the kernel releases the probes when the last descriptor closes
        self.assertTrue(loop.running(), "the target died with its tracer")
        after = loop.rate_after_tracer(before)
        print(f"\n  {mode} loop: {before:.0f}/s before, {after:.0f}/s after the tracer was killed", end=" ",
              flush=True)
        self.assertGreaterEqual(after, RATE_KEEP * before, "the target is slower after its tracer died")

    def test_lockstat_sigkill_leaves_target_unharmed_and_no_probe(self):
        self.check("lockstat", "mutex", lambda pid: ["-p", pid])

    def test_locktrace_sigkill_leaves_target_unharmed_and_no_probe(self):
        self.check("locktrace", "futex", lambda pid: ["-p", pid])

    def test_mklockstat_sigkill_leaves_target_unharmed_and_no_probe(self):
        self.check("mklockstat", "mmap", lambda pid: ["-p", pid, "--time", "0"])


# ---------------------------------------------------------------------------------------------

class StackStorageFull(FaultTest):
    """--stack-storage-size 1: stacks that do not fit are counted and shown as lost; the counts
    themselves stay exact."""

    def test_lockstat_counts_lost_stacks_and_keeps_exact_totals(self):
        record = os.path.join(self.tmp, "record.json")
        out_json = os.path.join(self.tmp, "out.json")
        r = self.run_tool("lockstat", "--stack-storage-size", "1", "--json", out_json, "-n", "0", "--",
                          lk.binary("lockwork"), record, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = lk.load_json(out_json)
        lost = report["lost_stacks"]
        self.assertGreater(lost, 0, report)
        self.assertIn(f"WARNING: {lost} stack traces could not be stored", r.stdout)
        rec = lk.load_json(record)
        locks = {int(l["address"], 16): l for l in report["locks"]}
        orders = locks[int(rec["locks"]["orders_lock"], 16)]
        for c in rec["contend"]:
            t = next(t for t in orders["threads"] if t["tid"] == c["tid"])
            self.assertEqual(t["acquisitions"], c["orders_acquisitions"])

    def test_locktrace_counts_lost_stacks_and_keeps_exact_totals(self):
        record = os.path.join(self.tmp, "rec.json")
        work = self.spawn([lk.binary("futex_scenarios"), record, "block", "4", "5"], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True)
        tool = self.start_tool("locktrace", "-p", work.pid, "--stack-storage-size", "1", "-d")
        work.stdin.write("go\n")
        work.stdin.close()
        self.assertEqual(work.wait(timeout=120), 0)
        rc, out = self.finish(tool)
        err = tool.stderr()
        self.assertEqual(rc, 0, err)
        m = re.search(r"^stack_errors (\d+)$", err, re.M)
        self.assertIsNotNone(m, err)
        self.assertGreater(int(m[1]), 0, "the waiter, the holder and main have three stacks; one fits")
        rec = lk.load_json(record)
        rows = list(csv.reader(io.StringIO(out)))[1:]
        waiter = [r for r in rows if int(r[1]) == rec["waiter_tid"] and int(r[2], 16) == int(rec["addr"], 16)]
        self.assertEqual(sum(int(r[7]) for r in waiter), rec["waits"])
        self.assertEqual(sum(int(r[8]) for r in waiter), rec["woken_waits"])

    def test_mklockstat_counts_lost_stacks_and_keeps_exact_totals(self):
        tool = self.start_tool("mklockstat", "--stack-storage-size", "1", "--time", "0")
        work = subprocess.run([lk.binary("mmap_contend"), "4", "2", os.path.join(self.tmp, "record")],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(work.returncode, 0, work.stderr)
        tool.p.send_signal(signal.SIGINT)
        rc, out = self.finish(tool)
        err = tool.stderr()
        self.assertEqual(rc, 0, err)
        m = re.search(r"(\d+) waits.*; lost: (\d+) samples, (\d+) stacks", err)
        self.assertIsNotNone(m, err)
        waits, lost_samples, lost_stacks = int(m[1]), int(m[2]), int(m[3])
        self.assertGreater(lost_stacks, 0, err)
        self.assertEqual(lost_samples, 0)
        samples = [l.split(",") for l in out.splitlines() if l.startswith("s,")]
        self.assertEqual(sum(int(s[7]) for s in samples), waits)
        self.assertTrue([s for s in samples if int(s[8]) < 0], "no sample shows its stack as lost")
        # One stack fits the main map, one the spill map that takes stacks colliding in it.
        self.assertLessEqual(len([l for l in out.splitlines() if l.startswith("t,")]), 2)


# ---------------------------------------------------------------------------------------------

class Environment(FaultTest):
    def run_without_tracefs(self, tool, *args):
        """Runs the tool in a private mount namespace in which tracefs is not mounted."""
        script = ("for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do "
                  "mountpoint -q $m && umount $m; done; "
                  "test -e /sys/kernel/tracing/events && { echo 'tracefs still mounted' >&2; exit 99; }; "
                  'exec "$@"')
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                               lk.binary(tool), *map(str, args)], capture_output=True, text=True, timeout=300)

    def check_mounts_tracefs(self, r):
        self.assertNotEqual(r.returncode, 99, r.stderr)
        if r.returncode != 0:  # allowed only with a reason
            self.assertIn("tracefs", r.stderr)
            self.fail(f"root could mount tracefs here, yet the tool did not: {r.stderr}")
        self.assertIn("Tracing", r.stderr)

    def test_lockstat_mounts_tracefs_when_it_is_not_mounted(self):
        self.check_mounts_tracefs(self.run_without_tracefs("lockstat", "--", lk.binary("parprimes"), "2", "2000"))

    def test_locktrace_mounts_tracefs_when_it_is_not_mounted(self):
        self.check_mounts_tracefs(self.run_without_tracefs("locktrace", "1"))

    def test_mklockstat_mounts_tracefs_when_it_is_not_mounted(self):
        self.check_mounts_tracefs(self.run_without_tracefs("mklockstat", "--time", "1"))

    def test_mklockstat_kprobe_backend_needs_kprobes_and_auto_picks_what_exists(self):
        r = self.run_tool("mklockstat", "--backend", "kprobe", "--time", "1")
        if lk.kernel_has_kprobes():
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("backend kprobe", r.stderr)
        else:
            self.assert_one_error_line(r, "mklockstat", (1,), "kprobe backend cannot run")
        r = self.run_tool("mklockstat", "--time", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("backend tracepoint" if lk.kernel_has_lock_tracepoints() else "backend kprobe", r.stderr)

    def run_as_nobody(self, tool, *args):
        # The binary is copied where nobody can execute it, whatever the build tree's permissions.
        os.chmod(self.tmp, 0o755)
        exe = os.path.join(self.tmp, tool)
        shutil.copy(lk.binary(tool), exe)
        os.chmod(exe, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", exe,
                               *map(str, args)], capture_output=True, text=True, timeout=60, cwd=self.tmp)

    def test_lockstat_as_non_root_is_one_clear_error(self):
        self.assert_one_error_line(self.run_as_nobody("lockstat", "-p", "1", "1"), "lockstat", (1,), "root")

    def test_locktrace_as_non_root_is_one_clear_error(self):
        self.assert_one_error_line(self.run_as_nobody("locktrace", "1"), "locktrace", (1,), "root")

    def test_mklockstat_as_non_root_is_one_clear_error(self):
        self.assert_one_error_line(self.run_as_nobody("mklockstat", "--time", "1"), "mklockstat", (1,), "root")


# ---------------------------------------------------------------------------------------------

class OtherTracers(FaultTest):
    """perf, counting the same tracepoints system-wide while our tool runs, still sees them."""

    def setUp(self):
        super().setUp()
        if shutil.which("perf") is None:
            lk.skip_unless_ci(self, "perf is not installed (Debian: linux-perf; scripts/setup installs it)")

    def check_perf_counts(self, event, tool, tool_args):
        self.assertGreater(perf_count(event, 1), 0, f"perf sees no {event} even without our tool: no load?")
        p = self.start_tool(tool, *tool_args)
        n = perf_count(event)
        p.p.send_signal(signal.SIGINT)
        rc, _ = self.finish(p)
        self.assertEqual(rc, 0, p.stderr())
        print(f"\n  perf counted {n} {event} while {tool} ran", end=" ", flush=True)
        self.assertGreater(n, 0, f"{tool} blinded perf to {event}")

    def test_perf_sees_lock_contention_while_mklockstat_runs(self):
        Loop(self, "mmap", threads=4)
        self.check_perf_counts("lock:contention_begin", "mklockstat", ["--time", "0"])

    def test_perf_sees_futex_syscalls_while_locktrace_runs(self):
        loop = Loop(self, "futex")
        self.check_perf_counts("syscalls:sys_enter_futex", "locktrace", ["-p", loop.pid])

    def test_perf_sees_sched_switch_while_locktrace_runs(self):
        loop = Loop(self, "futex")
        self.check_perf_counts("sched:sched_switch", "locktrace", ["-p", loop.pid])


# ---------------------------------------------------------------------------------------------

class FailedRunKeepsOutput(FaultTest):
    """A run that fails (here: no such process) leaves an existing output file as it was."""

    CONTENT = "an earlier report the user kept\n"

    def check(self, tool, option_args, args):
        path = os.path.join(self.tmp, "keep.out")
        with open(path, "w") as f:
            f.write(self.CONTENT)
        r = self.run_tool(tool, *option_args(path), *args(lk.unused_pid()))
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), self.CONTENT, f"{tool} {option_args('FILE')} changed the file")

    def test_lockstat_json_file_is_unchanged_by_a_failed_run(self):
        self.check("lockstat", lambda p: ["--json", p], lambda pid: ["-p", pid, "1"])

    def test_lockstat_folded_file_is_unchanged_by_a_failed_run(self):
        self.check("lockstat", lambda p: ["--folded", "wait", p], lambda pid: ["-p", pid, "1"])

    def test_locktrace_output_file_is_unchanged_by_a_failed_run(self):
        self.check("locktrace", lambda p: ["-o", p], lambda pid: ["-p", pid, "1"])

    def test_locktrace_json_output_file_is_unchanged_by_a_failed_run(self):
        self.check("locktrace", lambda p: ["--format", "json", "-o", p], lambda pid: ["-p", pid, "1"])

    def test_locktrace_hist_file_is_unchanged_by_a_failed_run(self):
        self.check("locktrace", lambda p: ["--hist", p], lambda pid: ["-p", pid, "1"])

    def test_mklockstat_output_file_is_unchanged_by_a_failed_run(self):
        self.check("mklockstat", lambda p: ["-o", p], lambda pid: ["-p", pid, "--time", "1"])


# ---------------------------------------------------------------------------------------------

class ExitStatus(FaultTest):
    """lockstat -- COMMAND exits as COMMAND did: its status, or 128+N when signal N killed it."""

    def test_lockstat_exits_with_the_commands_exit_status(self):
        r = self.run_tool("lockstat", "--", "sh", "-c", "exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)

    def test_lockstat_exits_128_plus_n_when_the_command_is_killed_by_signal_n(self):
        r = self.run_tool("lockstat", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.returncode, 128 + signal.SIGTERM, r.stderr)

    def test_lockstat_exits_0_when_the_command_succeeds(self):
        r = self.run_tool("lockstat", "--", "sh", "-c", "exit 0")
        self.assertEqual(r.returncode, 0, r.stderr)


# ---------------------------------------------------------------------------------------------

class Memory(FaultTest):
    def test_lockstat_rss_stays_bounded_over_many_reset_intervals(self):
        loop = Loop(self, "mutex", threads=2)
        seconds = 9
        p = self.start_tool("lockstat", "-p", loop.pid, "-i", "0.2", "--reset", seconds)
        started = time.monotonic()
        time.sleep(seconds / 3)
        third = rss_kb(p.p.pid)
        time.sleep(max(0.0, started + seconds - 0.7 - time.monotonic()))
        end = rss_kb(p.p.pid)
        rc, out = self.finish(p)
        # How many reports fit in the run depends on how busy the machine is (each one reads and
        # symbolises the maps); a handful is enough to see memory grow if it does.
        self.assertGreaterEqual(out.count("interval"), 5, "too few interval reports to compare memory over")
        self.assertEqual(rc, 0, p.stderr())
        print(f"\n  RSS {third} kB at a third of the run, {end} kB at its end", end=" ", flush=True)
        self.assertLessEqual(end, third * (1 + RSS_GROWTH) + RSS_SLACK_KB)


if __name__ == "__main__":
    lk.main()
