#!/usr/bin/env python3
"""lockstat on POSIX semaphores: its JSON must agree with what the semwork workload recorded.

semwork uses a global semaphore (pool_sem) as a lock among three workers and a heap one (gate)
as a signal: handed off by the main thread, timed out, and interrupted by a signal.

Tolerances: counts exact; hold time within 25 %; wait time within 40 % (each call costs tens of
microseconds of uprobe traps here, which the workload's own clock partly sees), as for mutexes."""
import os
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk

HOLD_TOLERANCE = 0.25
WAIT_TOLERANCE = 0.40


def by_address(report):
    return {int(l["address"], 16): l for l in report["locks"]}


def thread(lock, tid):
    for t in lock["threads"]:
        if t["tid"] == tid:
            return t
    raise AssertionError(f"thread {tid} missing from lock {lock['name']}")


def within(actual, expected, tolerance):
    return abs(actual - expected) <= tolerance * expected


class Run:
    """One lockstat run on semwork, shared by a test class."""

    def __init__(self, args):
        self.tmp = tempfile.TemporaryDirectory()
        self.record_path = os.path.join(self.tmp.name, "record.json")
        self.json_path = os.path.join(self.tmp.name, "lockstat.json")
        self.result = subprocess.run(
            [lk.binary("lockstat"), "--json", self.json_path, "-n", "0", *args,
             "--", lk.binary("semwork"), self.record_path],
            capture_output=True, text=True, timeout=300)
        if self.result.returncode == 0:
            self.record = lk.load_json(self.record_path)
            self.report = lk.load_json(self.json_path)
            self.locks = by_address(self.report)

    def lock(self, test, name):
        addr = int(self.record["sems"][name], 16)
        test.assertIn(addr, self.locks, f"{name} ({addr:#x}) not in the report")
        return self.locks[addr]


class FullMode(unittest.TestCase):
    """lockstat --kinds sem --json FILE -- semwork RECORD."""

    @classmethod
    def setUpClass(cls):
        cls.trace = None if lk.bpf_unavailable_reason() else Run(["--kinds", "sem"])

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.trace.result.returncode, 0, self.trace.result.stderr)

    def lock(self, name):
        return self.trace.lock(self, name)

    @property
    def record(self):
        return self.trace.record

    def test_semaphores_are_of_kind_semaphore(self):
        for name in ("pool_sem", "gate"):
            self.assertEqual(self.lock(name)["kind"], "semaphore")
        self.assertEqual({l["kind"] for l in self.trace.report["locks"]}, {"semaphore"})

    def test_global_semaphore_is_named_by_symbol(self):
        self.assertEqual(self.lock("pool_sem")["name"], "pool_sem")

    def test_heap_semaphore_is_labelled_by_its_init_stack(self):
        lock = self.lock("gate")
        self.assertRegex(lock["name"], r"^#\d+$")
        self.assertTrue(lock["init_stack"][0].startswith("sem_init"), lock["init_stack"])
        self.assertTrue(any(f.startswith("make_gate+") for f in lock["init_stack"]), lock["init_stack"])

    def test_acquisitions_and_failed_trywaits_per_thread_are_exact(self):
        lock = self.lock("pool_sem")
        for rec in self.record["workers"]:
            t = thread(lock, rec["tid"])
            self.assertEqual(t["acquisitions"], rec["acquisitions"])
            self.assertEqual(t["failed_trylocks"], rec["failed_trywaits"])
        self.assertEqual(lock["acquisitions"], sum(r["acquisitions"] for r in self.record["workers"]))
        self.assertEqual(lock["failed_trylocks"], sum(r["failed_trywaits"] for r in self.record["workers"]))

    def test_own_posts_are_holds_not_handoffs(self):
        lock = self.lock("pool_sem")
        for rec in self.record["workers"]:
            t = thread(lock, rec["tid"])
            self.assertEqual(t["holds"], rec["acquisitions"])
            self.assertEqual(t["handoffs"], 0)
            self.assertEqual(t["unreleased"], 0)

    def test_hold_time_per_thread_within_tolerance(self):
        lock = self.lock("pool_sem")
        for rec in self.record["workers"]:
            got = thread(lock, rec["tid"])["hold_ns"]
            self.assertTrue(within(got, rec["hold_ns"], HOLD_TOLERANCE), f"tid {rec['tid']}: {got} vs {rec['hold_ns']}")
        self.assertGreaterEqual(lock["min_hold_ns"], self.record["hold_us"] * 1000)

    def test_wait_time_per_lock_within_tolerance(self):
        got = self.lock("pool_sem")["wait_ns"]
        want = sum(r["wait_ns"] for r in self.record["workers"])
        self.assertTrue(within(got, want, WAIT_TOLERANCE), f"{got} vs {want}")

    def test_acquisition_stack_names_the_direct_caller(self):
        for s in self.lock("pool_sem")["stacks"]:
            self.assertRegex(s["frames"][0], r"^sem_(try)?wait\+", s["frames"])
            self.assertTrue(s["frames"][1].startswith("use_pool+"), s["frames"])

    def test_posts_by_another_thread_are_handoffs(self):
        lock = self.lock("gate")
        producer = thread(lock, self.record["producer"]["tid"])
        self.assertEqual(producer["handoffs"], self.record["producer"]["handoffs"])
        self.assertEqual(producer["acquisitions"], 0)
        self.assertEqual(lock["handoffs"], self.record["producer"]["handoffs"])
        self.assertEqual(lock["holds"], 0)
        [stack] = [s for s in lock["stacks"] if s["handoffs"]]
        self.assertTrue(stack["frames"][0].startswith("sem_post"), stack["frames"])
        self.assertTrue(stack["frames"][1].startswith("hand_off+"), stack["frames"])

    def test_acquisitions_never_posted_back_are_unreleased(self):
        rec = self.record["consumer"]
        t = thread(self.lock("gate"), rec["tid"])
        self.assertEqual(t["acquisitions"], rec["acquisitions"])
        self.assertEqual(t["unreleased"], rec["acquisitions"])
        self.assertEqual(t["holds"], 0)
        self.assertEqual(t["hold_ns"], 0)

    def test_timed_waits_that_time_out_are_timeouts(self):
        rec = self.record["consumer"]
        t = thread(self.lock("gate"), rec["tid"])
        self.assertEqual(t["timeouts"], rec["timeouts"])
        frames = [s["frames"] for s in self.lock("gate")["stacks"] if s["timeouts"]]
        self.assertTrue(frames and all(f[1].startswith("time_out+") for f in frames), frames)

    def test_interrupted_timed_waits_are_errors_not_timeouts(self):
        rec = self.record["consumer"]
        t = thread(self.lock("gate"), rec["tid"])
        self.assertEqual(t["errors"], rec["interrupted"])
        stacks = [s for s in self.lock("gate")["stacks"] if s["errors"]]
        self.assertEqual(sum(s["errors"] for s in stacks), rec["interrupted"])
        for s in stacks:
            self.assertTrue(s["frames"][1].startswith("be_interrupted+"), s["frames"])
            self.assertEqual(s["timeouts"], 0)

    def test_consumer_wait_within_tolerance(self):
        rec = self.record["consumer"]
        got = thread(self.lock("gate"), rec["tid"])["wait_ns"]
        want = rec["acquire_wait_ns"] + rec["timeout_wait_ns"]  # interrupted waits are not counted
        self.assertTrue(within(got, want, WAIT_TOLERANCE), f"{got} vs {want}")


class DefaultKinds(unittest.TestCase):
    """Semaphores are traced only when --kinds names them."""

    @classmethod
    def setUpClass(cls):
        cls.trace = None if lk.bpf_unavailable_reason() else Run([])

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.trace.result.returncode, 0, self.trace.result.stderr)

    def test_no_semaphore_without_kinds_sem(self):
        addrs = {int(a, 16) for a in self.trace.record["sems"].values()}
        self.assertFalse(addrs & set(self.trace.locks), self.trace.report["locks"])
        self.assertNotIn("semaphore", {l["kind"] for l in self.trace.report["locks"]})


class ContentionMode(unittest.TestCase):
    """lockstat --mode contention on semwork: the gate's waits that slept are a semaphore's."""

    @classmethod
    def setUpClass(cls):
        cls.trace = None if lk.bpf_unavailable_reason() else Run(["--mode", "contention"])

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.trace.result.returncode, 0, self.trace.result.stderr)

    def test_heap_semaphore_waits_are_a_semaphore_contention(self):
        lock = self.trace.lock(self, "gate")
        rec = self.trace.record["consumer"]
        self.assertEqual(lock["kind"], "semaphore")
        self.assertRegex(lock["name"], r"^#\d+$")
        self.assertTrue(any(f.startswith("make_gate+") for f in lock["init_stack"]), lock["init_stack"])
        # Each handoff, timed wait and interrupted wait slept exactly once in the kernel.
        self.assertEqual(lock["contentions"], rec["acquisitions"] + rec["timeouts"] + rec["interrupted"])
        self.assertEqual(lock["timeouts"], rec["timeouts"])
        self.assertEqual(lock["eagain_waits"], 0)
        self.assertEqual([t["tid"] for t in lock["threads"]], [rec["tid"]])


if __name__ == "__main__":
    lk.main()
