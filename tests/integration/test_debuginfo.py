#!/usr/bin/env python3
"""lockstat on a stripped program: its global lock and its frames are named from a separate debug
file given with --debug-dir (a .build-id tree), and libc's internal functions from libc's debug
file when it is installed (Debian's libc6-dbg)."""
import os
import re
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk

# parprimes takes primes_lock once per prime: 2 threads below 400000 make ~34k acquisitions, a
# second or two of uprobe traps, long enough for lockstat to see libc mapped.
WORKLOAD = ["2", "400000"]


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


def mapped_libc():
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]).startswith("libc.so"):
                return parts[5]
    return None


def libc_debug_file_installed():
    libc = mapped_libc()
    bid = libc and build_id(libc)
    return bool(bid) and os.path.exists(f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug")


def all_frames(lock):
    return [f for s in lock["stacks"] for f in s["frames"]]


class StrippedWorkload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        t = cls.tmp.name
        cls.prog = os.path.join(t, "bin", "parprimes")
        cls.debug_dir = os.path.join(t, "debug")
        os.makedirs(os.path.dirname(cls.prog))
        original = lk.binary("parprimes")
        bid = build_id(original)
        if bid is None:
            raise AssertionError(f"{original} has no build-id")
        debug = os.path.join(cls.debug_dir, ".build-id", bid[:2], bid[2:] + ".debug")
        os.makedirs(os.path.dirname(debug))
        subprocess.run(["objcopy", "--only-keep-debug", original, debug], check=True)
        subprocess.run(["strip", "--strip-all", "-o", cls.prog, original], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)

    def lockstat(self, *options):
        json_path = os.path.join(self.tmp.name, "report.json")
        run = subprocess.run([lk.binary("lockstat"), "--json", json_path, "-n", "0", *options,
                              "--", self.prog, *WORKLOAD], capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)
        total = re.search(r"^total (\d+) primes", run.stdout, re.M)
        self.assertIsNotNone(total, run.stdout)
        report = lk.load_json(json_path)
        # The one lock the workload takes once per prime it finds.
        counter = [l for l in report["locks"] if l["acquisitions"] == int(total.group(1))]
        self.assertEqual(len(counter), 1, [(l["name"], l["acquisitions"]) for l in report["locks"]])
        return counter[0]

    def test_the_stripped_copy_alone_names_neither_the_lock_nor_its_functions(self):
        lock = self.lockstat()
        self.assertNotEqual(lock["name"], "primes_lock")
        self.assertFalse(any(f.startswith("worker+") for f in all_frames(lock)), all_frames(lock))

    def test_debug_dir_names_the_global_lock_and_the_frames(self):
        lock = self.lockstat("--debug-dir", self.debug_dir)
        self.assertEqual(lock["name"], "primes_lock")
        frames = all_frames(lock)
        self.assertTrue(any(f.startswith("worker+") and f.endswith("[parprimes]") for f in frames), frames)
        self.assertEqual([f for f in frames if "[parprimes+" in f], [])
        if libc_debug_file_installed():
            # Not in libc's dynamic symbols: named only through libc's debug file.
            self.assertTrue(any(f.startswith("start_thread+") and f.endswith("[libc.so.6]") for f in frames), frames)


if __name__ == "__main__":
    lk.main()
