"""The mklockstat lab: its grader on the reference, on the generated skeleton and on a skeleton with
one TODO filled in, and what the skeleton's program says when run with every TODO open."""
import os
import subprocess
import tempfile
import unittest

import lab_testlib
import lockkit_testlib as lk

Lab_mklockstat = lab_testlib.lab_tests("mklockstat")


class Skeleton(unittest.TestCase):
    def test_skeleton_names_every_open_todo(self):
        lk.require_bpf(self)
        if not lk.kernel_has_lock_tracepoints():
            lk.skip_unless_ci(self, "this kernel has no lock:contention_begin/end tracepoints")
        program = os.path.join(lab_testlib.BUILD, "labs", "bin", "lab-mklockstat-skeleton")
        with tempfile.TemporaryDirectory() as d:
            record, log = os.path.join(d, "record"), os.path.join(d, "log")
            with open(log, "w") as fh:
                fh.write("an earlier log\n")
            r = subprocess.run([program, "-o", log, "--", lk.binary("mmap_contend"), "2", "0.3", record],
                               capture_output=True, text=True, timeout=300)
            # The program ran to its end: the workload finished and wrote its final record.
            with open(record) as fh:
                self.assertIn("end_ns", fh.read(), r.stderr)
            # A run with TODOs open has failed: it leaves an existing log as it was.
            with open(log) as fh:
                self.assertEqual(fh.read(), "an earlier log\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        for n in range(1, 4):
            self.assertIn(f"lab-mklockstat: TODO {n} (", r.stderr)
        self.assertIn("lab-mklockstat: error: 3 of 3 TODOs not done", r.stderr)
        for bad in ("terminate called", "Traceback", "Segmentation", "Aborted"):
            self.assertNotIn(bad, r.stderr)


if __name__ == "__main__":
    lk.main()
