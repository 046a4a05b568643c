"""Whole user stacks of programs built without frame pointers, unwound from their call-frame
information: lockwork-nofp (C) and mutexpair (C++, std::mutex locked in two functions), traced with
-p from before they start, so every module they run is mapped when the first stack is taken.
Every count is the workload's own record; every stack is its whole chain, from the lock function
through the caller and the thread function to libc's thread start, and one call site gives one stack."""
import os
import re
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def libc_has_debug_file():
    """Whether libc's separate debug file (libc6-dbg) is installed: then libc's internal
    functions (start_thread) have names."""
    notes = subprocess.run(["readelf", "-n", LIBC], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", notes)
    return bool(m) and os.path.exists(f"/usr/lib/debug/.build-id/{m.group(1)[:2]}/{m.group(1)[2:]}.debug")


def run_on_waiting_workload(test, tmp, workload, tool_argv):
    """Starts `workload RECORD --wait-stdin`, traces it with `tool_argv + ["-p", PID]` and lets it
    go once the tool traces; returns (tool stderr, the workload's record)."""
    record_path = os.path.join(tmp, f"{workload}.record.json")
    work = subprocess.Popen([lk.binary(workload), record_path, "--wait-stdin"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        test.assertTrue(work.stdout.readline().startswith("pid "))
        tool = lk.Proc(tool_argv + ["-p", str(work.pid)], tmpdir=tmp)
        tool.wait_for_stderr("Tracing ")
        work.stdin.write("go\n")
        work.stdin.flush()
        test.assertEqual(work.wait(timeout=120), 0)
        rc, _ = tool.finish(timeout=120)
    finally:
        if work.poll() is None:
            work.kill()
        work.stdin.close()
        work.stdout.close()
        work.wait()
    test.assertEqual(rc, 0, tool.stderr())
    return tool.stderr(), lk.load_json(record_path)


def names(frames):
    """lockstat frames "name+0xoff [module]" -> names."""
    return [f.split("+0x")[0] if not f.startswith("[unknown]") else f for f in frames]


class LockworkWithoutFramePointers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.report = cls.record = None

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        if self.report is None:
            json_path = os.path.join(self.tmp.name, "lockstat.json")
            _, rec = run_on_waiting_workload(self, self.tmp.name, "lockwork-nofp",
                                             [lk.binary("lockstat"), "-n", "0", "--json", json_path])
            type(self).record = rec
            type(self).report = lk.load_json(json_path)

    def lock(self, name):
        addr = int(self.record["locks"][name], 16)
        return next(l for l in self.report["locks"] if int(l["address"], 16) == addr)

    def test_the_whole_chain_through_glibc(self):
        stacks = self.lock("orders_lock")["stacks"]
        self.assertEqual(len(stacks), 1, [s["frames"] for s in stacks])  # one call site, one stack
        chain = names(stacks[0]["frames"])
        self.assertEqual(chain[:3], ["pthread_mutex_lock", "place_order", "contend_worker"], chain)
        if libc_has_debug_file():
            self.assertEqual(chain[3:], ["start_thread", "clone3"], chain)
        else:
            self.assertEqual(len(chain), 5, chain)

        account = self.lock("account_lock")["stacks"]
        self.assertEqual(len(account), 1, [s["frames"] for s in account])
        self.assertEqual(names(account[0]["frames"])[:4],
                         ["pthread_mutex_lock", "timed_section", "update_account", "contend_worker"])

    def test_no_frame_is_junk(self):
        self.assertEqual(self.report["lost_stacks"], 0)
        for lock in self.report["locks"]:
            for s in lock["stacks"]:
                self.assertEqual([f for f in s["frames"] if f.startswith("[unknown] 0x")], [], s["frames"])
                # Whole: a thread's stack ends in libc's thread start, the main thread's in _start.
                if libc_has_debug_file():
                    self.assertIn(names(s["frames"])[-1], ["clone3", "_start"], s["frames"])

    def test_every_count_lockwork_recorded_is_exact(self):
        lk.assert_lockwork_counts(self, self.report, self.record)


class CxxMutexWithoutFramePointers(unittest.TestCase):
    """mutexpair: account_mutex is only locked in deposit(), queue_mutex only in produce(), each by
    a holder and a waiter thread, and each round the waiter blocks in FUTEX_WAIT on it."""

    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def check_record(self, rec):
        self.assertFalse(rec["timed_out"], "the workload could not make its mutexes contended")
        self.assertEqual([t["deposits"] for t in rec["threads"]], [rec["rounds"]] * 2)

    def test_lockstat_names_both_callers(self):
        json_path = os.path.join(self.tmp.name, "lockstat.json")
        _, rec = run_on_waiting_workload(self, self.tmp.name, "mutexpair",
                                         [lk.binary("lockstat"), "-n", "0", "--json", json_path])
        self.check_record(rec)
        report = lk.load_json(json_path)
        self.assertEqual(report["lost_stacks"], 0)
        locks = {int(l["address"], 16): l for l in report["locks"]}
        roles = {t["tid"]: t["role"] for t in rec["threads"]}
        for name, caller, count in [("account_mutex", "deposit", "deposits"), ("queue_mutex", "produce", "produces")]:
            lock = locks[int(rec["locks"][name], 16)]
            # One stack per calling thread function: holder() -> caller and waiter() -> caller.
            self.assertEqual(len(lock["stacks"]), 2, [s["frames"] for s in lock["stacks"]])
            seen = set()
            for s in lock["stacks"]:
                chain = names(s["frames"])
                self.assertEqual(chain[0], "pthread_mutex_lock", chain)
                self.assertEqual(chain[1], f"(anonymous namespace)::{caller}(long, int)", chain)
                role = chain[2].replace("(anonymous namespace)::", "").replace("()", "")
                self.assertIn(role, ["holder", "waiter"], chain)
                seen.add(role)
                self.assertEqual(s["acquisitions"], next(t[count] for t in rec["threads"] if t["role"] == role))
                if libc_has_debug_file():
                    self.assertEqual(chain[-2:], ["start_thread", "clone3"], chain)
            self.assertEqual(seen, set(roles.values()))

    def test_locktrace_names_the_caller_of_the_lock_function_in_every_futex_wait(self):
        out = os.path.join(self.tmp.name, "locktrace.json")
        _, rec = run_on_waiting_workload(self, self.tmp.name, "mutexpair",
                                         [lk.binary("locktrace"), "--format", "json", "-o", out])
        self.check_record(rec)
        report = lk.load_json(out)
        self.assertEqual(report["lost_stacks"], 0)
        waiter = next(t["tid"] for t in rec["threads"] if t["role"] == "waiter")
        for name, caller in [("account_mutex", "deposit"), ("queue_mutex", "produce")]:
            addr = int(rec["locks"][name], 16)
            rows = [r for r in report["rows"] if int(r["address"], 16) == addr and r["wait_count"] > 0]
            self.assertTrue(rows, f"no futex wait on {name}")
            # Every round the waiter blocked once on this mutex, from `caller`.
            self.assertEqual(sum(r["wait_count"] for r in rows if r["tid"] == waiter), rec["rounds"])
            for r in rows:
                stack = r["stack"]  # the task name, then root to leaf
                fn = f"(anonymous namespace)::{caller}(long, int)"
                self.assertIn(fn, stack, stack)
                self.assertEqual(stack[stack.index(fn) + 1], "pthread_mutex_lock", stack)
                self.assertIn("(anonymous namespace)::waiter()", stack[:stack.index(fn)], stack)


class FirstLockOfACommand(unittest.TestCase):
    """firstlock-nofp (no frame pointers) locks first_lock once in its own constructor, before main,
    moments after exec: lockstat -- firstlock-nofp holds the command at its dynamic linker until the
    modules it maps are in the unwind tables, so even that first stack is unwound whole."""

    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def first_lock(self):
        json_path = os.path.join(self.tmp.name, "lockstat.json")
        record_path = os.path.join(self.tmp.name, "firstlock.record.json")
        tool = lk.Proc([lk.binary("lockstat"), "-n", "0", "--json", json_path, "--",
                        lk.binary("firstlock-nofp"), record_path], tmpdir=self.tmp.name)
        rc, _ = tool.finish(timeout=120)
        self.assertEqual(rc, 0, tool.stderr())
        rec, report = lk.load_json(record_path), lk.load_json(json_path)
        self.assertEqual(rec["first_lock_calls"], 1)
        addr = int(rec["first_lock"], 16)
        return rec, report, next(l for l in report["locks"] if int(l["address"], 16) == addr)

    def test_the_constructor_lock_is_unwound_whole(self):
        rec, report, lock = self.first_lock()
        self.assertEqual(lock["acquisitions"], rec["first_lock_calls"])
        self.assertEqual(len(lock["stacks"]), 1, [s["frames"] for s in lock["stacks"]])
        chain = names(lock["stacks"][0]["frames"])
        self.assertEqual(chain[:3], ["pthread_mutex_lock", "take_first_lock", "before_main"], chain)
        # Through libc's start-up code to the program's entry point, where the walk ends.
        modules = [f.rsplit(" [", 1)[-1].rstrip("]") for f in lock["stacks"][0]["frames"]]
        self.assertIn("libc.so.6", modules[3:-1], lock["stacks"][0]["frames"])
        self.assertEqual(chain[-1], "_start", chain)


if __name__ == "__main__":
    lk.main()
