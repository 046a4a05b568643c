"""The locktrace lab: its grader on the reference, on the generated skeleton and on a skeleton with
one TODO filled in, and what the skeleton's program says when run with every TODO open."""
import os
import subprocess
import tempfile
import unittest

import lab_testlib
import lockkit_testlib as lk

Lab_locktrace = lab_testlib.lab_tests("locktrace")


class Skeleton(unittest.TestCase):
    def test_skeleton_names_every_open_todo(self):
        lk.require_bpf(self)
        program = os.path.join(lab_testlib.BUILD, "labs", "bin", "lab-locktrace-skeleton")
        with tempfile.TemporaryDirectory() as d:
            record = os.path.join(d, "record")
            r = subprocess.run([program, "--", lk.binary("futex_scenarios"), record, "block", "1", "5"],
                               input="go\n", capture_output=True, text=True, timeout=300)
            self.assertTrue(os.path.exists(record), r.stderr)  # the workload ran to its end
        self.assertEqual(r.returncode, 1, r.stderr)
        for n in range(1, 4):
            self.assertIn(f"lab-locktrace: TODO {n} (", r.stderr)
        self.assertIn("lab-locktrace: error: 3 of 3 TODOs not done", r.stderr)
        for bad in ("terminate called", "Traceback", "Segmentation", "Aborted"):
            self.assertNotIn(bad, r.stderr)


if __name__ == "__main__":
    lk.main()
