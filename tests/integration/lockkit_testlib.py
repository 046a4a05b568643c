"""Helpers for the BPF integration tests: find the built tools and workloads, start processes,
and decide whether BPF tests can run here. Under CI=true a test that cannot run fails."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("LOCKKIT_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")


def binary(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        raise AssertionError(f"{path} not built")
    return path


def bpf_unavailable_reason():
    if os.geteuid() != 0:
        return "BPF tests need root"
    if not os.path.exists("/sys/kernel/btf/vmlinux") and not os.path.exists("/proc/kallsyms"):
        return "no kernel support visible"
    return None


def require_bpf(test):
    """Skips (exit 77 for the whole file) outside CI; fails under CI=true."""
    reason = bpf_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        test.fail(f"BPF test cannot run under CI: {reason}")
    raise unittest.SkipTest(reason)


def skip_unless_ci(test, reason):
    """A BPF test that cannot apply here: skipped by hand, a failure under CI=true."""
    if os.environ.get("CI") == "true":
        test.fail(f"BPF test would be skipped under CI: {reason}")
    raise unittest.SkipTest(reason)


TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracefs_root():
    """The mounted tracefs (mounted at /sys/kernel/tracing first if it is not), or None."""
    for root in TRACEFS_ROOTS:
        if os.path.exists(os.path.join(root, "events")):
            return root
    if os.geteuid() == 0 and os.path.isdir(TRACEFS_ROOTS[0]):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS_ROOTS[0]], capture_output=True)
        if os.path.exists(os.path.join(TRACEFS_ROOTS[0], "events")):
            return TRACEFS_ROOTS[0]
    return None


def tracefs_has(relative):
    root = tracefs_root()
    return root is not None and os.path.exists(os.path.join(root, relative))


def kernel_has_kprobes():
    return tracefs_has("kprobe_events") or os.path.exists("/sys/bus/event_source/devices/kprobe")


def kernel_has_lock_tracepoints():
    return tracefs_has("events/lock/contention_begin") and tracefs_has("events/lock/contention_end")


def unused_pid():
    """A pid no process has: one just reaped (pids are handed out in increasing order, so it is
    not reused within a test)."""
    p = subprocess.Popen(["true"])
    p.wait()
    assert not os.path.exists(f"/proc/{p.pid}")
    return p.pid


class Proc:
    """A started process with stderr captured to a file, so that waiting for a line never blocks."""

    def __init__(self, argv, stdin=None, stdout=subprocess.PIPE, tmpdir=None, env=None):
        self.stderr_path = os.path.join(tmpdir, f"stderr.{os.path.basename(argv[0])}.{time.monotonic_ns()}")
        self._stderr = open(self.stderr_path, "w+")
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=self._stderr, text=True, env=env)

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def wait_for_stderr(self, prefix, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr().splitlines():
                if line.startswith(prefix):
                    return line
            if self.p.poll() is not None:
                raise AssertionError(f"process exited ({self.p.returncode}) before '{prefix}':\n{self.stderr()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for '{prefix}':\n{self.stderr()}")

    def finish(self, timeout=120):
        out, _ = self.p.communicate(timeout=timeout)
        self._stderr.close()
        return self.p.returncode, out


def load_json(path):
    with open(path) as f:
        return json.load(f)


def main():
    # unittest exits 0 when every test was skipped; ctest wants 77 to show "skipped".
    result = unittest.main(exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun and len(result.skipped) == result.testsRun:
        sys.exit(77)
    sys.exit(0)


def assert_lockwork_counts(test, report, record):
    """Every count lockwork recorded for itself is in lockstat's JSON `report`, exactly: the
    acquisitions per thread of its contended mutexes, failed trylocks, condition waits, read and
    write locks per thread, and recursive lock calls and holds."""
    locks = {int(l["address"], 16): l for l in report["locks"]}

    def lock(name):
        addr = int(record["locks"][name], 16)
        test.assertIn(addr, locks, f"{name} ({addr:#x}) not in the report")
        return locks[addr]

    def thread(l, tid):
        for t in l["threads"]:
            if t["tid"] == tid:
                return t
        raise AssertionError(f"thread {tid} missing from lock {l['name']}")

    test.assertEqual(report["pid"], record["pid"])
    for rec in record["contend"]:
        test.assertEqual(thread(lock("orders_lock"), rec["tid"])["acquisitions"], rec["orders_acquisitions"])
        test.assertEqual(thread(lock("account_lock"), rec["tid"])["acquisitions"], rec["account_acquisitions"])
    t = thread(lock("trylock_lock"), record["trylock"]["tid"])
    test.assertEqual(t["failed_trylocks"], record["trylock"]["failed"])
    test.assertEqual(t["acquisitions"], record["trylock"]["succeeded"])
    test.assertEqual(thread(lock("cond_lock"), record["condvar"]["tid"])["cond_waits"], record["condvar"]["waits"])
    rw = record["rwlock"]
    table = lock("table_lock")
    for tid, n in zip(rw["reader_tids"], rw["reads"]):
        test.assertEqual(thread(table, tid)["acquisitions"], n)
    test.assertEqual(thread(table, rw["writer_tid"])["acquisitions"], rw["writes"])
    test.assertEqual(table["write_acquisitions"], rw["writes"])
    test.assertEqual(lock("recursive_lock")["acquisitions"], record["recursive"]["lock_calls"])
    test.assertEqual(lock("recursive_lock")["holds"], record["recursive"]["holds"])


class SharedRun:
    """A mixin (put it before unittest.TestCase) for a test class whose tests all read one run of a
    tool, made once in setUpClass. By default the run is

        TOOL ARGS... -- WORKLOAD RECORD

    which starts the workload under the tool; a class that runs its tool another way (attached to
    a running workload, ended by a signal) overrides run_tool(). Class attributes:

    files      {name: file name}: each becomes cls.<name>_path in the class's temporary directory
               (cls.tmp, removed after the class); "record" is the workload's own record
    tool       the tool's binary name (default run)
    args       its arguments; "{name}" stands for the path of file `name`
    workload   the workload's binary name (default run); its arguments are workload_args
    load       {attribute: (file name, loader)}: after a run that exited 0, cls.<attribute> is
               loader(path of that file), e.g. {"report": ("json", load_json)}

    After setUpClass, cls.result is the subprocess.CompletedProcess of the run (None when it could
    not be made here). setUp fails the test unless the run exited 0: BPF is required (require_bpf)
    and what cannot_run() names is skipped outside CI and fails under CI=true."""

    files = {"record": "record.json"}
    tool = None
    args = ()
    workload = None
    workload_args = ("{record}",)
    load = {"record": ("record", load_json)}
    timeout = 300

    @classmethod
    def cannot_run(cls):
        """Why this machine cannot make the run (a missing workload, a kernel feature), or None."""
        return None

    @classmethod
    def path(cls, name):
        return getattr(cls, f"{name}_path")

    @classmethod
    def expand(cls, args):
        return [a.format(**{n: cls.path(n) for n in cls.files}) for a in args]

    @classmethod
    def workload_path(cls):
        return binary(cls.workload)

    @classmethod
    def run_tool(cls):
        """Makes the run; returns its subprocess.CompletedProcess."""
        return subprocess.run([binary(cls.tool), *cls.expand(cls.args), "--", cls.workload_path(),
                               *cls.expand(cls.workload_args)], capture_output=True, text=True, timeout=cls.timeout)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        for name, file in cls.files.items():
            setattr(cls, f"{name}_path", os.path.join(cls.tmp.name, file))
        cls.result = None
        if bpf_unavailable_reason() or cls.cannot_run():
            return
        cls.result = cls.run_tool()
        if cls.result.returncode == 0:
            for attr, (name, loader) in cls.load.items():
                setattr(cls, attr, loader(cls.path(name)))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        require_bpf(self)
        reason = self.cannot_run()
        if reason:
            skip_unless_ci(self, reason)
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
