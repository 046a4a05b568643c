"""lockstat on a program built without frame pointers (lockwork-nofp: the lockwork scenarios with
-fomit-frame-pointer, as distributions build). A frame-pointer walk there reads stack words that
are no return addresses; the stacks must end before them: every frame lies in code, and a call
site gives one stack, not one per junk tail."""
import os
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk


class NoFramePointers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.record_path = os.path.join(cls.tmp.name, "record.json")
        cls.json_path = os.path.join(cls.tmp.name, "lockstat.json")
        cls.result = None
        if lk.bpf_unavailable_reason():
            return
        cls.result = subprocess.run(
            [lk.binary("lockstat"), "--json", cls.json_path, "-n", "0", "--", lk.binary("lockwork-nofp"),
             cls.record_path], capture_output=True, text=True, timeout=300)
        if cls.result.returncode == 0:
            cls.record = lk.load_json(cls.record_path)
            cls.report = lk.load_json(cls.json_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def lock(self, name):
        addr = int(self.record["locks"][name], 16)
        return next(l for l in self.report["locks"] if int(l["address"], 16) == addr)

    def test_no_frame_lies_outside_code(self):
        for lock in self.report["locks"]:
            for s in lock["stacks"]:
                junk = [f for f in s["frames"] if f.startswith("[unknown] 0x")]
                self.assertEqual(junk, [], s["frames"])

    def test_a_call_site_gives_one_stack(self):
        # orders_lock is taken at one call site, in place_order(): every stack starts there.
        stacks = self.lock("orders_lock")["stacks"]
        for s in stacks:
            self.assertTrue(s["frames"][0].startswith("pthread_mutex_lock"), s["frames"])
            self.assertTrue(s["frames"][1].startswith("place_order+"), s["frames"])
        self.assertLessEqual(len(stacks), 2, [s["frames"] for s in stacks])

    def test_every_count_lockwork_recorded_is_exact(self):
        lk.assert_lockwork_counts(self, self.report, self.record)

if __name__ == "__main__":
    lk.main()
