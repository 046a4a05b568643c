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


class SystemWide(unittest.TestCase):
    """mklockstat system-wide (auto backend) while mmap_contend runs 8 threads for 3 s, ended by
    Ctrl-C. What the workload guarantees: its threads take their process's mmap_lock (an
    rw_semaphore) for writing in mmap/mprotect/munmap, concurrently, for its whole run. Which kernel
    lock ends up most contended (here a page-table spinlock) is not part of that."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mklockstat-test.")
        cls.tool = None
        if lk.bpf_unavailable_reason() or not lk.kernel_has_lock_tracepoints():
            return
        cls.tool = lk.Proc([lk.binary("mklockstat"), "--period", "50", "--time", "120"], tmpdir=cls.tmp)
        try:
            cls.line = cls.tool.wait_for_stderr("Tracing locks ")
            cls.traced_from = time.monotonic_ns()
            rec_path = os.path.join(cls.tmp, "record")
            work = subprocess.run([lk.binary("mmap_contend"), "8", "3", rec_path], capture_output=True, text=True,
                                  timeout=120)
            cls.work_rc, cls.work_err = work.returncode, work.stderr
            cls.rec = read_record(rec_path) if work.returncode == 0 else None
            time.sleep(0.2)
            cls.tool.p.send_signal(signal.SIGINT)  # Ctrl-C: every open period is flushed
            cls.code, cls.out = cls.tool.finish(timeout=120)
        finally:
            if cls.tool.p.poll() is None:
                cls.tool.p.kill()
                cls.tool.p.wait()
        cls.err = cls.tool.stderr()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        lk.require_bpf(self)
        if not lk.kernel_has_lock_tracepoints():
            lk.skip_unless_ci(self, "this kernel has no lock:contention_begin/end tracepoints")
        self.assertEqual(self.work_rc, 0, self.work_err)
        self.assertEqual(self.code, 0, self.err)
        self.log = Log(self, self.out)
        self.pid, self.tids = self.rec["pid"], set(self.rec["tids"])
        self.mine = [s for s in self.log.samples if s["pid"] == self.pid]
        self.workers = [s for s in self.mine if s["tid"] in self.tids]
        self.assertTrue(self.workers, "no sample of the workload's threads")

    def summary(self):
        m = SUMMARY_RE.search(self.err)
        self.assertIsNotNone(m, self.err)
        return dict(why=m[1], samples=int(m[2]), periods=int(m[3]), stacks=int(m[4]), waits=int(m[5]),
                    lost_samples=int(m[6]), lost_stacks=int(m[7]))

    def test_announces_duration_backend_and_what_lockcount_means(self):
        self.assertIn("Tracing locks for 120 seconds", self.line)
        self.assertIn("tracepoint", self.line)
        self.assertIn("lockcount", self.line)

    def test_ends_on_ctrl_c_with_a_summary(self):
        self.assertEqual(self.summary()["why"], "interrupted")

    def test_every_worker_appears_as_a_thread_of_its_process(self):
        # P<pid>_T<tid>, the right way round.
        self.assertTrue({s["tid"] for s in self.mine} <= self.tids | {self.pid})
        self.assertEqual({s["tid"] for s in self.workers}, self.tids, "a worker thread never showed up")
        self.assertFalse([s for s in self.log.samples if s["pid"] in self.tids], "tid printed as pid")
        self.assertEqual({s["comm"] for s in self.mine}, {"mmap_contend"})

    def test_does_not_trace_itself(self):
        self.assertFalse([s for s in self.log.samples if s["pid"] == self.tool.p.pid])

    def test_workers_wait_for_an_rw_semaphore_for_writing(self):
        # The mmap_lock: one rw_semaphore that several workers waited for, for writing. Other kernel
        # locks may have more contended acquisitions; that is not asserted either way.
        writers = {}
        for s in self.workers:
            if s["type"] == "Semaphore:W":
                writers.setdefault(s["lock"], set()).add(s["tid"])
        shared = [lock for lock, tids in writers.items() if len(tids) >= 2]
        self.assertTrue(shared, f"no rw_semaphore waited for (write) by two workers: {writers}")
        waits = sum(s["count"] for s in self.workers if s["lock"] in shared)
        print(f"\n{waits} waits of the workers on {len(shared)} shared rw_semaphore(s), "
              f"of {self.summary()['waits']} counted in BPF", end=" ", flush=True)
        self.assertLessEqual(waits, self.summary()["waits"])

    def test_rwsem_waits_are_in_the_rwsem_slow_paths(self):
        checked = 0
        for s in self.mine:
            if s["type"] in ("Semaphore:R", "Semaphore:W") and s["stackid"] >= 0:
                leaf = self.log.stacks[s["stackid"]][1][0]
                self.assertRegex(leaf, r"\Arwsem_down_(read|write)_slowpath\+")
                checked += 1
        self.assertGreater(checked, 0, "no rw_semaphore wait with a stack")

    def test_periods_are_on_one_grid_each_key_once_in_order(self):
        self.assertFalse([s for s in self.log.samples if s["start"] % PERIOD_NS], "period start off the grid")
        keys = [(s["start"], s["pid"], s["tid"], s["lock"], s["type"]) for s in self.log.samples]
        self.assertEqual(len(keys), len(set(keys)))
        starts = [s["start"] for s in self.log.samples]
        self.assertEqual(starts, sorted(starts))

    def test_stacks_are_printed_before_use_with_symbolized_kernel_frames(self):
        for s in self.log.samples:
            if s["stackid"] >= 0:
                self.assertIn(s["stackid"], self.log.stacks, f"line {s['line']}: stack never printed")
                self.assertLess(self.log.stacks[s["stackid"]][0], s["line"])
        for sid, (_, frames) in self.log.stacks.items():
            self.assertTrue(frames, f"stack {sid} has no frames")
            for frame in frames:
                # Kernel text always has a name. Code loaded at run time (another tracer's BPF
                # programs, modules) may be gone before it could be named: not this test's concern.
                if re.fullmatch(r"\[unknown\] 0x([0-9a-f]+)", frame) and int(frame[12:], 16) >= 0xffffffffc0000000:
                    continue
                self.assertRegex(frame, FRAME_RE)

    def test_every_wait_counted_in_bpf_is_in_exactly_one_sample(self):
        summary = self.summary()
        self.assertEqual(summary["lost_samples"], 0)
        self.assertEqual(sum(s["count"] for s in self.log.samples), summary["waits"])
        self.assertEqual(summary["samples"], len(self.log.samples))

    def test_most_periods_of_the_workload_run_have_samples_of_it(self):
        # The workers contend on mmap_lock throughout their run: periods are flushed, not dropped.
        first = max(self.rec["start_ns"], self.traced_from)
        periods = range(first - first % PERIOD_NS, self.rec["end_ns"], PERIOD_NS)
        covered = {s["start"] for s in self.workers}
        share = sum(1 for p in periods if p in covered) / len(periods)
        print(f"\ncovered {share:.0%} of {len(periods)} periods", end=" ", flush=True)
        self.assertGreaterEqual(share, 0.8)


class Filters(unittest.TestCase):
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

    def start_background_workload(self, threads=4):
        rec_path = os.path.join(self.tmp, "background")
        work = subprocess.Popen([self.workload, str(threads), "120", rec_path], stdout=subprocess.DEVNULL)
        self.addCleanup(lambda: (work.poll() is None and work.kill(), work.wait()))
        wait_for_file(rec_path)
        return work, rec_path

    def test_pid_filter_ends_with_the_process_and_names_no_heap_lock(self):
        work, rec_path = self.start_background_workload()
        pid = read_record(rec_path)["pid"]
        out_path = os.path.join(self.tmp, "pid.log")
        tool, _, _ = self.start_tool("-p", pid, "--time", 60, "--names", "-o", out_path, stdout=subprocess.DEVNULL)
        time.sleep(2)
        work.terminate()
        work.wait(timeout=30)
        code, _ = tool.finish(timeout=30)  # ends by itself when the process exits
        self.assertEqual(code, 0, tool.stderr())
        self.assertEqual(self.summary(tool)["why"], f"pid {pid} exited")
        with open(out_path) as f:
            log = Log(self, f.read(), fields=10)
        self.assertTrue(log.samples)
        self.assertEqual({s["pid"] for s in log.samples}, {pid})
        rec = read_record(rec_path)  # the first record: the workload was stopped early
        self.assertTrue({s["tid"] for s in log.samples} <= set(rec["tids"]) | {pid})
        # An mm_struct is not a global: no kernel symbol names the mmap_lock (or any rw_semaphore
        # of this process: they all live in its mm, its VMAs or their anon_vmas).
        names = {s["name"] for s in log.samples if s["type"].startswith("Semaphore")}
        self.assertEqual(names, {""}, "the workers waited for no rw_semaphore, or one was named")

    def test_tid_filter_keeps_one_thread(self):
        _, rec_path = self.start_background_workload()
        rec = read_record(rec_path)
        tid = rec["tids"][0]
        tool, _, _ = self.start_tool("-t", tid, "--time", 3)
        code, out = tool.finish()
        self.assertEqual(code, 0, tool.stderr())
        log = Log(self, out)
        self.assertTrue(log.samples, "the thread waited for no lock")
        self.assertEqual({(s["pid"], s["tid"]) for s in log.samples}, {(rec["pid"], tid)})

    def test_comm_filter_skips_named_commands_only(self):
        self.start_background_workload()
        other = os.path.join(self.tmp, "mmap_other")
        shutil.copy(self.workload, other)
        tool, _, _ = self.start_tool("--filter-comm", "mmap_contend", "--time", 60)
        other_rec = self.run_workload(4, 2, exe=other, name="other")
        tool.p.send_signal(signal.SIGTERM)
        code, out = tool.finish()
        self.assertEqual(code, 0, tool.stderr())
        log = Log(self, out)
        comms = {s["comm"] for s in log.samples}
        self.assertNotIn("mmap_contend", comms)
        self.assertIn("mmap_other", comms)
        self.assertIn(other_rec["pid"], {s["pid"] for s in log.samples})


class Backends(unittest.TestCase):
    """Which backend can run depends on the kernel: each machine checks what applies to it."""

    def setUp(self):
        lk.require_bpf(self)
        self.tool = lk.binary("mklockstat")

    def run_tool(self, *args):
        return subprocess.run([self.tool, *map(str, args)], capture_output=True, text=True, timeout=120)

    def test_both_programs_compile_and_load_whether_or_not_they_can_attach(self):
        for backend in ("tracepoint", "kprobe"):
            r = self.run_tool("--backend", backend, "--dry-run")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"dry run: {backend} backend", r.stderr)

    def test_auto_prefers_the_lock_tracepoints_and_falls_back_to_kprobes(self):
        if not lk.kernel_has_lock_tracepoints() and not lk.kernel_has_kprobes():
            lk.skip_unless_ci(self, "this kernel has neither lock tracepoints nor kprobes")
        r = self.run_tool("--time", 1)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = next((l for l in r.stderr.splitlines() if l.startswith("Tracing locks ")), None)
        self.assertIsNotNone(line, r.stderr)
        self.assertIn("backend tracepoint" if lk.kernel_has_lock_tracepoints() else "backend kprobe", line)

    def test_kprobe_backend_runs_where_kprobes_exist_and_fails_clearly_elsewhere(self):
        r = self.run_tool("--backend", "kprobe", "--time", 1)
        if lk.kernel_has_kprobes():
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("backend kprobe", r.stderr)
            self.assertRegex(r.stderr, SUMMARY_RE)
        else:
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn("mklockstat: error: ", r.stderr)
            self.assertIn("kprobe backend cannot run", r.stderr)


if __name__ == "__main__":
    lk.main()
