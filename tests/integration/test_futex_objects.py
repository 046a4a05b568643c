#!/usr/bin/env python3
"""locktrace's JSON names the pthread object each futex word lies in, against the `contended`
workload (started held, traced with -p, then let go): its rows on a condition variable's futex
words are that condvar (both words one object, at the condvar's own address), its rows on a mutex
are that mutex, and the CSV keeps its columns."""
import os
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk


class LocktraceObjects(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.record_path = os.path.join(cls.tmp.name, "record.json")
        cls.out = os.path.join(cls.tmp.name, "rows.json")
        cls.rc = None
        if lk.bpf_unavailable_reason():
            return
        wl = subprocess.Popen([lk.binary("contended"), cls.record_path, "wait"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
        try:
            first = wl.stdout.readline().split()
            assert first[:1] == ["pid"], first
            tool = lk.Proc([lk.binary("locktrace"), "-p", first[1], "--format", "json", "-o", cls.out],
                           tmpdir=cls.tmp.name)
            tool.wait_for_stderr("Tracing ")
            wl.stdin.write("go\n")
            wl.stdin.close()
            cls.wl_rc = wl.wait(timeout=120)
            cls.rc, _ = tool.finish(timeout=120)
            cls.err = tool.stderr()
        finally:
            if wl.poll() is None:
                wl.kill()
                wl.wait()
            wl.stdout.close()
        if cls.rc == 0:
            cls.record = lk.load_json(cls.record_path)
            cls.rows = lk.load_json(cls.out)["rows"]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.wl_rc, 0)
        self.assertEqual(self.rc, 0, self.err)

    def rows_in(self, name, size):
        lo = int(self.record["locks"][name], 16)
        rows = [r for r in self.rows if lo <= int(r["address"], 16) < lo + size]
        self.assertTrue(rows, f"no row on {name}")
        return lo, rows

    def test_condvar_words_are_reported_as_the_condvar(self):
        lo, rows = self.rows_in("cv", 48)
        for r in rows:
            self.assertEqual(r["object"], {"address": hex(lo), "name": "cv", "kind": "condvar"}, r)
        # The waiter's rows: the condvar's waits, on its __g_signals words.
        waits = [r for r in rows if r["wait_count"] > 0]
        self.assertEqual(sum(r["blocked_count"] for r in waits), self.record["cond_waits"]["cv"])

    def test_heap_condvar_is_found_from_its_stacks(self):
        lo, rows = self.rows_in("heap_cv", 48)
        signalled = [r for r in rows if r["wake_count"] > 0]
        self.assertTrue(signalled, rows)
        for r in rows:
            self.assertEqual(r["object"], {"address": hex(lo), "name": None, "kind": "condvar"}, r)

    def test_mutex_words_are_reported_as_the_mutex(self):
        for name, sym in (("hot_lock", "hot_lock"), ("heap_lock", None)):
            lo, rows = self.rows_in(name, 40)
            for r in rows:
                self.assertEqual(r["address"], hex(lo))
                self.assertEqual(r["object"], {"address": hex(lo), "name": sym, "kind": "mutex"}, r)

    def test_semaphore_word_is_reported_as_the_semaphore(self):
        lo, rows = self.rows_in("gate_sem", 32)
        for r in rows:
            self.assertEqual(r["object"], {"address": hex(lo), "name": "gate_sem", "kind": "semaphore"}, r)


if __name__ == "__main__":
    lk.main()
