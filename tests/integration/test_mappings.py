#!/usr/bin/env python3
"""Mappings seen as the target makes them (the kernel's mapping records), on real BPF.

A program that lives a few milliseconds is gone before the first /proc/PID/maps snapshot can show
its libc: every frame of its lock stacks must still be named. A command's forked children are
traced with it; the children of a `-p PID` run without --follow-forks are not, and the tools say so
once per child."""
import os
import re
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk

RUNS = 8  # the race with the dynamic loader is lost only sometimes: one run proves little
FORK_LINE = re.compile(r"^(lockstat|locktrace): pid (\d+) forked (\d+) "
                       r"\(not traced: without --follow-forks child processes are not followed\)$")


def fork_lines(stderr, tool):
    return [(int(m.group(2)), int(m.group(3))) for m in map(FORK_LINE.match, stderr.splitlines())
            if m and m.group(1) == tool]


class ShortLivedCommand(unittest.TestCase):
    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def run_lockstat(self, forks, run):
        record_path = os.path.join(self.tmp.name, f"record.{run}.json")
        json_path = os.path.join(self.tmp.name, f"lockstat.{run}.json")
        r = subprocess.run([lk.binary("lockstat"), "--json", json_path, "-n", "0", "--",
                            lk.binary("shortlived"), record_path, str(forks)],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r, lk.load_json(record_path), lk.load_json(json_path)

    def test_every_frame_of_a_short_lived_program_is_named(self):
        for run in range(RUNS):
            with self.subTest(run=run):
                r, record, report = self.run_lockstat(0, run)
                locks = {int(l["address"], 16): l for l in report["locks"]}
                for name, want in record["locks"].items():
                    lock = locks.get(int(want["address"], 16))
                    self.assertIsNotNone(lock, f"{name} missing from the report")
                    self.assertEqual(lock["name"], name)
                    self.assertEqual(lock["acquisitions"], want["acquisitions"])
                    for stack in lock["stacks"]:
                        frames = stack["frames"]
                        self.assertRegex(frames[0], r"^pthread_mutex_lock\+0x0 \[libc\.so\.6\]$", frames)
                        self.assertTrue(any(f.startswith("short_work+") and f.endswith(" [shortlived]") for f in frames), frames)
                        for f in frames:
                            self.assertFalse(f.startswith("[unknown] [shortlived+"), frames)
                # Every frame of every lock (the loader's own locks too) lies in a known module.
                for lock in report["locks"]:
                    for stack in lock["stacks"]:
                        for f in stack["frames"]:
                            self.assertFalse(f.startswith("[unknown] 0x"), f"{lock['name']}: {stack['frames']}")
                self.assertEqual(fork_lines(r.stderr, "lockstat"), [], r.stderr)
                self.assertEqual(report.get("dropped", {}).get("mapping_records_lost", 0), 0)

    def test_the_forked_children_of_a_command_are_traced_and_not_said(self):
        r, record, report = self.run_lockstat(3, 0)
        self.assertEqual(fork_lines(r.stderr, "lockstat"), [], r.stderr)
        self.assertNotIn(" forked ", r.stderr)
        for child in record["children"]:
            self.assertIn(child, report["pids"])
        for tid in record["tids"]:
            if tid != record["pid"]:
                self.assertNotIn(tid, report["pids"])  # a thread is no process of the tree


class LocktraceRunningProcess(unittest.TestCase):
    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_children_of_a_traced_pid_are_said_once(self):
        json_path = os.path.join(self.tmp.name, "locktrace.json")
        # Forks two children once told to; prints their pids.
        sh = subprocess.Popen(["sh", "-c", "read x; sleep 0.1 & echo $!; sleep 0.1 & echo $!; wait"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            tool = lk.Proc([lk.binary("locktrace"), "-p", str(sh.pid), "--format", "json", "-o", json_path], tmpdir=self.tmp.name)
            tool.wait_for_stderr("Tracing pid")
            sh.stdin.write("go\n")
            sh.stdin.close()
            children = [int(l) for l in sh.stdout.read().split()]
            self.assertEqual(sh.wait(timeout=60), 0)
            rc, _ = tool.finish(timeout=60)
        finally:
            if sh.poll() is None:
                sh.kill()
            sh.wait()
        self.assertEqual(rc, 0, tool.stderr())
        self.assertEqual(len(children), 2)
        self.assertEqual(sorted(fork_lines(tool.stderr(), "locktrace")), sorted((sh.pid, c) for c in children),
                         tool.stderr())
        warnings = lk.load_json(json_path)["warnings"]
        for c in children:
            self.assertEqual(warnings.count(f"pid {sh.pid} forked {c} (not traced: without --follow-forks child "
                                            "processes are not followed)"), 1, warnings)


if __name__ == "__main__":
    lk.main()
