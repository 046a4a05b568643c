#!/usr/bin/env python3
"""lockstat's command line: bad input gets one clear line and exit 2 (usage) or 1 (runtime)."""
import os
import subprocess
import unittest

import lockkit_testlib as lk


def lockstat(*args):
    return subprocess.run([lk.binary("lockstat"), *args], capture_output=True, text=True, timeout=120)


class Usage(unittest.TestCase):
    def check_usage_error(self, args, text):
        r = lockstat(*args)
        self.assertEqual(r.returncode, 2, r.stderr)
        first = r.stderr.splitlines()[0]
        self.assertTrue(first.startswith("lockstat: error: "), r.stderr)
        self.assertIn(text, first)
        self.assertNotIn("Traceback", r.stderr)
        self.assertNotIn("terminate called", r.stderr)

    def test_help_exits_zero_and_shows_both_forms(self):
        r = lockstat("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("-p PID [duration]", r.stdout)
        self.assertIn("-- COMMAND", r.stdout)

    def test_nothing_to_trace(self):
        self.check_usage_error([], "nothing to trace")

    def test_pid_must_be_a_number(self):
        self.check_usage_error(["-p", "abc"], "invalid pid")

    def test_unknown_option(self):
        self.check_usage_error(["-p", "1", "--bogus"], "bogus")

    def test_bad_sort_key(self):
        self.check_usage_error(["-p", "1", "-s", "fastest"], "invalid --sort")

    def test_bad_sample_percentage(self):
        self.check_usage_error(["-p", "1", "--sample", "150"], "invalid --sample")

    def test_bad_duration(self):
        self.check_usage_error(["-p", "1", "soon"], "invalid duration")

    def test_missing_command(self):
        self.check_usage_error(["--", "/nonexistent/program"], "no such file")


class Runtime(unittest.TestCase):
    def setUp(self):
        lk.require_bpf(self)

    def test_nonexistent_pid_is_a_one_line_error(self):
        pid = lk.unused_pid()
        r = lockstat("-p", str(pid), "1")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"lockstat: error: no process with pid {pid}", r.stderr)

    def test_unwritable_json_fails_before_tracing(self):
        r = lockstat("--json", "/nonexistent/dir/out.json", "-p", str(os.getpid()), "1")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot write /nonexistent/dir/out.json", r.stderr)
        self.assertNotIn("Tracing", r.stderr)

    def test_command_exit_ends_tracing_with_a_report(self):
        r = lockstat("--", lk.binary("parprimes"), "2", "20000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("target exited", r.stderr)
        self.assertIn("primes_lock", r.stdout)


if __name__ == "__main__":
    lk.main()
