"""The lockstat lab: its grader, its skeleton (generated and built by the normal build), and what
the skeleton's program says when run with every TODO open."""
import os
import subprocess
import tempfile
import unittest

import lab_testlib
import lockkit_testlib as lk

Lab_lockstat = lab_testlib.lab_tests("lockstat")


class Skeleton(unittest.TestCase):
    def test_skeleton_names_every_open_todo(self):
        lk.require_bpf(self)
        program = os.path.join(lab_testlib.BUILD, "labs", "bin", "lab-lockstat-skeleton")
        parprimes = os.path.join(lab_testlib.BUILD, "labs", "bin", "parprimes")
        with tempfile.TemporaryDirectory() as d:
            record = os.path.join(d, "record")
            r = subprocess.run([program, "--", parprimes, "2", "2000"], capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, PARPRIMES_RECORD=record))
            # The program ran to its end: the workload finished and wrote its record.
            self.assertTrue(os.path.exists(record), r.stderr)
        self.assertEqual(r.returncode, 1, r.stderr)
        for n in range(1, 6):
            self.assertIn(f"lab-lockstat: TODO {n} (", r.stderr)
        self.assertIn("lab-lockstat: error: 5 of 5 TODOs not done", r.stderr)
        for bad in ("terminate called", "Traceback", "Segmentation", "Aborted"):
            self.assertNotIn(bad, r.stderr)


if __name__ == "__main__":
    lk.main()
