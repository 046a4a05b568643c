"""mklockstat against mmap_contend, whose threads queue on their process's mmap_lock (an
rw_semaphore) and which records its pid, its thread ids and when it ran."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import lockkit_testlib as lk

PERIOD_NS = 50_000_000
FRAME_RE = re.compile(r"[A-Za-z_][\w.]*\+0x[0-9a-f]+\Z")
SUMMARY_RE = re.compile(r"mklockstat: (.*) after [0-9.]+ s: (\d+) samples in (\d+) periods of [0-9.]+ ms, "
                        r"(\d+) stacks; (\d+) waits.*; lost: (\d+) samples, (\d+) stacks")


def read_record(path):
    rec = {"tids": [], "ops": {}}
    with open(path) as f:
        for line in f:
            key, *vals = line.split()
            if key == "tid":
                rec["tids"].append(int(vals[0]))
            elif key == "ops":
                rec["ops"][int(vals[0])] = int(vals[1])
            else:
                rec[key] = int(vals[0])
    return rec


def wait_for_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written")
        time.sleep(0.02)


class Log:
    """A parsed mklockstat log; checks the format line by line as it parses."""

    def __init__(self, test, text, fields=9):
        self.samples, self.stacks, self.order = [], {}, []
        for n, line in enumerate(text.splitlines(), 1):
            f = line.split(",")
            if f[0] == "t":
                sid = int(f[1])
                test.assertNotIn(sid, self.stacks, f"line {n}: stack {sid} printed twice")
                test.assertGreaterEqual(sid, 0, f"line {n}")
                self.stacks[sid] = (n, f[2:])
            elif f[0] == "s":
                test.assertEqual(len(f), fields, f"line {n}: {line}")
                m = re.fullmatch(r"P(\d+)_T(\d+)", f[2])
                test.assertIsNotNone(m, f"line {n}: {line}")
                test.assertRegex(f[4], r"\A0x[0-9a-f]+\Z")
                s = dict(line=n, comm=f[1], pid=int(m[1]), tid=int(m[2]), type=f[3], lock=int(f[4], 16),
                         start=int(f[5]), wait=int(f[6]), count=int(f[7]), stackid=int(f[8]),
                         name=f[9] if fields == 10 else None)
                test.assertGreater(s["count"], 0, f"line {n}")
                self.samples.append(s)
            else:
                test.fail(f"line {n}: unknown record: {line}")


class MklockstatTest(unittest.TestCase):
    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.mkdtemp(prefix="mklockstat-test.")
        self.tool = lk.binary("mklockstat")
        self.workload = lk.binary("mmap_contend")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_tool(self, *args, stdout=subprocess.PIPE):
        p = lk.Proc([self.tool, *map(str, args)], stdout=stdout, tmpdir=self.tmp)
        line = p.wait_for_stderr("Tracing locks ")
        return p, line, time.monotonic_ns()

    def run_workload(self, threads, seconds, exe=None, name="record"):
        rec_path = os.path.join(self.tmp, name)
        out = subprocess.run([exe or self.workload, str(threads), str(seconds), rec_path],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        return read_record(rec_path)

    def summary(self, proc):
        m = SUMMARY_RE.search(proc.stderr())
        self.assertIsNotNone(m, proc.stderr())
        return dict(why=m[1], samples=int(m[2]), periods=int(m[3]), stacks=int(m[4]), waits=int(m[5]),
                    lost_samples=int(m[6]), lost_stacks=int(m[7]))

    def test_samples_match_workload(self):
        tool, line, traced_from = self.start_tool("--period", 50, "--time", 120)
        self.assertIn("Tracing locks for 120 seconds", line)
        self.assertIn("tracepoint", line)
        self.assertIn("lockcount", line)
        rec = self.run_workload(8, 3)
        time.sleep(0.2)
        tool.p.send_signal(signal.SIGINT)  # Ctrl-C: every open period is flushed
        code, out = tool.finish()
        self.assertEqual(code, 0, tool.stderr())
        summary = self.summary(tool)
        self.assertEqual(summary["why"], "interrupted")
        log = Log(self, out)
        pid, tids = rec["pid"], set(rec["tids"])

        mine = [s for s in log.samples if s["pid"] == pid]
        self.assertTrue(mine, "no sample of the workload")
        # P<pid>_T<tid>, the right way round: every worker appears as a thread of its process.
        self.assertTrue({s["tid"] for s in mine} <= tids | {pid})
        self.assertEqual({s["tid"] for s in mine} & tids, tids, "a worker thread never showed up")
        self.assertFalse([s for s in log.samples if s["pid"] in tids], "tid printed as pid")
        self.assertFalse([s for s in log.samples if s["pid"] == tool.p.pid], "the tool traced itself")
        self.assertEqual({s["comm"] for s in mine}, {"mmap_contend"})

        # The most waited-for lock of the workload is its mmap_lock: an rw_semaphore, both sides.
        counts = {}
        for s in mine:
            counts[s["lock"]] = counts.get(s["lock"], 0) + s["count"]
        mmap_lock = max(counts, key=counts.get)
        types = {s["type"] for s in mine if s["lock"] == mmap_lock}
        self.assertTrue(types <= {"Semaphore:R", "Semaphore:W"}, types)
        self.assertIn("Semaphore:W", types)

        # One time grid: every period start is a multiple of the period.
        self.assertFalse([s for s in log.samples if s["start"] % PERIOD_NS], "period start off the grid")
        # Each (period, thread, lock, type) once, in period order.
        keys = [(s["start"], s["pid"], s["tid"], s["lock"], s["type"]) for s in log.samples]
        self.assertEqual(len(keys), len(set(keys)))
        starts = [s["start"] for s in log.samples]
        self.assertEqual(starts, sorted(starts))

        # Every stack id has its t, line before its first use, with symbolized kernel frames.
        for s in log.samples:
            if s["stackid"] >= 0:
                self.assertIn(s["stackid"], log.stacks, f"line {s['line']}: stack never printed")
                self.assertLess(log.stacks[s["stackid"]][0], s["line"])
        for sid, (_, frames) in log.stacks.items():
            self.assertTrue(frames, f"stack {sid} has no frames")
            for frame in frames:
                self.assertRegex(frame, FRAME_RE)
        for s in mine:
            if s["lock"] == mmap_lock and s["stackid"] >= 0:
                leaf = log.stacks[s["stackid"]][1][0]
                self.assertRegex(leaf, r"\Arwsem_down_(read|write)_slowpath\+")

        # Nothing lost, and every wait BPF counted is in exactly one sample.
        self.assertEqual(summary["lost_samples"], 0)
        self.assertEqual(sum(s["count"] for s in log.samples), summary["waits"])
        self.assertEqual(summary["samples"], len(log.samples))

        # Most periods of the workload's run have samples of it.
        first = max(rec["start_ns"], traced_from)
        periods = range(first - first % PERIOD_NS, rec["end_ns"], PERIOD_NS)
        covered = {s["start"] for s in mine}
        share = sum(1 for p in periods if p in covered) / len(periods)
        print(f"\ncovered {share:.0%} of {len(periods)} periods; {len(mine)} samples of the workload, "
              f"{sum(s['count'] for s in mine)} waits, {len(log.stacks)} stacks")
        self.assertGreaterEqual(share, 0.8)

    def test_pid_filter_names_and_output_file(self):
        rec_path = os.path.join(self.tmp, "record")
        work = subprocess.Popen([self.workload, "4", "120", rec_path], stdout=subprocess.DEVNULL)
        try:
            wait_for_file(rec_path)
            pid = read_record(rec_path)["pid"]
            out_path = os.path.join(self.tmp, "pid.log")
            tool, _, _ = self.start_tool("-p", pid, "--time", 60, "--names", "-o", out_path,
                                         stdout=subprocess.DEVNULL)
            time.sleep(2)
            work.terminate()
            work.wait(timeout=30)
            code, _ = tool.finish(timeout=30)  # ends by itself when the process exits
        finally:
            if work.poll() is None:
                work.kill()
        self.assertEqual(code, 0, tool.stderr())
        self.assertEqual(self.summary(tool)["why"], f"pid {pid} exited")
        with open(out_path) as f:
            log = Log(self, f.read(), fields=10)
        self.assertTrue(log.samples)
        self.assertEqual({s["pid"] for s in log.samples}, {pid})
        rec = read_record(rec_path)  # the first record: the workload was stopped early
        self.assertTrue({s["tid"] for s in log.samples} <= set(rec["tids"]) | {pid})
        # An mm_struct is not a global: no kernel symbol names the mmap_lock.
        self.assertEqual({s["name"] for s in log.samples if s["type"].startswith("Semaphore")}, {""})

    def test_tid_and_comm_filters(self):
        other = os.path.join(self.tmp, "mmap_other")
        shutil.copy(self.workload, other)
        rec_path = os.path.join(self.tmp, "record")
        work = subprocess.Popen([self.workload, "4", "120", rec_path], stdout=subprocess.DEVNULL)
        try:
            wait_for_file(rec_path)
            tid = read_record(rec_path)["tids"][0]
            by_tid, _, _ = self.start_tool("-t", tid, "--time", 3)
            by_comm, _, _ = self.start_tool("--filter-comm", "mmap_contend", "--time", 60)
            other_rec = self.run_workload(4, 2, exe=other, name="other")
            by_comm.p.send_signal(signal.SIGTERM)
            code_comm, out_comm = by_comm.finish()
            code_tid, out_tid = by_tid.finish()
        finally:
            work.kill()
            work.wait()
        self.assertEqual(code_tid, 0, by_tid.stderr())
        self.assertEqual(code_comm, 0, by_comm.stderr())
        tid_log = Log(self, out_tid)
        self.assertTrue(tid_log.samples, "the thread waited for no lock")
        self.assertEqual({(s["pid"], s["tid"]) for s in tid_log.samples}, {(read_record(rec_path)["pid"], tid)})
        comm_log = Log(self, out_comm)
        comms = {s["comm"] for s in comm_log.samples}
        self.assertNotIn("mmap_contend", comms)
        self.assertIn("mmap_other", comms)
        self.assertIn(other_rec["pid"], {s["pid"] for s in comm_log.samples})

    def test_backends(self):
        has_kprobes = (os.path.exists("/sys/kernel/tracing/kprobe_events") or
                       os.path.exists("/sys/kernel/debug/tracing/kprobe_events") or
                       os.path.exists("/sys/bus/event_source/devices/kprobe"))
        # Both programs compile and pass the verifier, whether or not they can attach here.
        for backend in ("tracepoint", "kprobe"):
            r = subprocess.run([self.tool, "--backend", backend, "--dry-run"], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"dry run: {backend} backend", r.stderr)
        if has_kprobes:
            lk.skip_unless_ci(self, "this kernel has kprobes: the failure path cannot be checked")
        r = subprocess.run([self.tool, "--backend", "kprobe", "--time", "1"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("kprobe backend cannot run", r.stderr)


if __name__ == "__main__":
    lk.main()
