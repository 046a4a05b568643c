#!/usr/bin/env python3
"""lockstat --kinds sem on Debian's own python3 (a program nobody here wrote): CPython 3.11's
threading.Lock is a sem_t from PyThread_allocate_lock, taken with sem_trywait / sem_wait and
released with sem_post. A script runs THREADS threads that each take one Lock ROUNDS times and
writes the sem_t's address (read through ctypes from the lock object) and the threads' ids.

What the script guarantees, and so what is asserted: each worker thread acquires and itself
releases that semaphore exactly ROUNDS times. The main thread takes it once to check the address;
CPython's start-up uses other semaphores (import locks) that malloc may have put at the same
address before, all from the main thread, so the main thread's count is at least 1."""
import os
import subprocess
import tempfile
import textwrap
import unittest

import lockkit_testlib as lk

PYTHON = "/usr/bin/python3"
THREADS = 4
ROUNDS = 150

SCRIPT = textwrap.dedent("""\
    import ctypes, json, sys, threading

    THREADS, ROUNDS = int(sys.argv[2]), int(sys.argv[3])
    lock = threading.Lock()
    # lockobject: PyObject_HEAD, then the PyThread_type_lock (a sem_t * on Linux).
    sem = ctypes.c_void_p.from_address(id(lock) + object.__basicsize__).value
    value = lambda: ctypes.c_uint32.from_address(sem).value  # the semaphore's count (first word)
    with lock:
        assert value() == 0, "not the lock's semaphore"
    assert value() == 1, "not the lock's semaphore"
    counter = 0
    tids = [0] * THREADS

    def work(i):
        global counter
        tids[i] = threading.get_native_id()
        for _ in range(ROUNDS):
            with lock:
                counter += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter == THREADS * ROUNDS
    with open(sys.argv[1], "w") as f:
        json.dump({"sem": hex(sem), "main_tid": threading.get_native_id(), "tids": tids,
                   "rounds": ROUNDS}, f)
    """)


class PythonLock(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.result = None
        if lk.bpf_unavailable_reason() or not os.path.exists(PYTHON):
            return
        script = os.path.join(cls.tmp.name, "locks.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        record_path = os.path.join(cls.tmp.name, "record.json")
        json_path = os.path.join(cls.tmp.name, "lockstat.json")
        cls.result = subprocess.run(
            [lk.binary("lockstat"), "--kinds", "sem", "-n", "0", "--json", json_path,
             "--", PYTHON, script, record_path, str(THREADS), str(ROUNDS)],
            capture_output=True, text=True, timeout=300)
        if cls.result.returncode == 0:
            cls.record = lk.load_json(record_path)
            cls.report = lk.load_json(json_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        if not os.path.exists(PYTHON):
            lk.skip_unless_ci(self, f"{PYTHON} is not installed")
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def lock(self):
        addr = int(self.record["sem"], 16)
        for l in self.report["locks"]:
            if int(l["address"], 16) == addr:
                return l
        raise AssertionError(f"the Lock's semaphore {addr:#x} is not in the report")

    def test_lock_is_a_semaphore_named_by_its_init_stack(self):
        lock = self.lock()
        self.assertEqual(lock["kind"], "semaphore")
        self.assertRegex(lock["name"], r"^#\d+$")
        # python3.11 is stripped and built with LTO: its internal frames may be unnamed, but the
        # init comes from the interpreter, on the main thread's stack.
        init = lock["init_stack"]
        self.assertTrue(init[0].startswith("sem_init+"), init)
        self.assertIn("[python3.11", init[1], init)
        self.assertTrue(any(f.startswith("Py_RunMain+") for f in init), init)

    def test_each_worker_acquires_and_releases_exactly_its_rounds(self):
        lock = self.lock()
        threads = {t["tid"]: t for t in lock["threads"]}
        for tid in self.record["tids"]:
            self.assertIn(tid, threads)
            t = threads[tid]
            self.assertEqual(t["acquisitions"], ROUNDS, t)
            self.assertEqual(t["holds"], ROUNDS, t)
            self.assertEqual(t["handoffs"], 0, t)
            self.assertEqual(t["unreleased"], 0, t)
        others = set(threads) - set(self.record["tids"])
        self.assertEqual(others, {self.record["main_tid"]})
        self.assertGreaterEqual(threads[self.record["main_tid"]]["acquisitions"], 1)
        self.assertGreaterEqual(lock["acquisitions"], THREADS * ROUNDS + 1)

    def test_acquisition_stacks_run_from_the_interpreter_to_sem_calls(self):
        stacks = [s for s in self.lock()["stacks"] if s["acquisitions"]]
        for s in stacks:
            self.assertRegex(s["frames"][0], r"^sem_(try|clock)?wait\+", s["frames"])
            self.assertIn("[python3.11", s["frames"][1], s["frames"])
            self.assertTrue(any(f.startswith(("start_thread+", "Py_BytesMain+")) for f in s["frames"]), s["frames"])
        # The workers' acquisitions, whole to their thread's start (the main thread has no start_thread).
        from_threads = [s for s in stacks if any(f.startswith("start_thread+") for f in s["frames"])]
        self.assertEqual(sum(s["acquisitions"] for s in from_threads), THREADS * ROUNDS)


if __name__ == "__main__":
    lk.main()
