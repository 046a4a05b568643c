#!/usr/bin/env python3
"""lockstat on a statically linked program (lockwork-static: lockwork.c linked with -static).

Such an executable holds its own copy of only the pthread functions it uses (no timedlock, no spin
locks), several of them under internal aliases at one address (__pthread_mutex_lock and
pthread_mutex_lock). lockstat must probe what it has, skip what it lacks, and count exactly what
the workload recorded itself."""
import os
import subprocess
import unittest

import lockkit_testlib as lk


def static_workload():
    path = os.path.join(lk.BIN, "lockwork-static")
    return path if os.path.exists(path) else None


def defined_functions(path):
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    return {l.split()[2] for l in out.splitlines() if len(l.split()) == 3 and l.split()[1] in "TtWi"}


class StaticProgram(lk.SharedRun, unittest.TestCase):
    files = {"record": "record.json", "json": "lockstat.json"}
    tool, args = "lockstat", ("--json", "{json}", "-n", "0")
    exe = static_workload()
    load = {"record": ("record", lk.load_json), "report": ("json", lk.load_json)}

    @classmethod
    def workload_path(cls):
        return cls.exe

    @classmethod
    def cannot_run(cls):
        return None if cls.exe else "lockwork-static not built (no static C library: install libc6-dev)"

    def test_workload_is_static_and_lacks_functions_lockstat_requires_of_a_libc(self):
        headers = subprocess.run(["readelf", "-lW", self.exe], capture_output=True, text=True, check=True).stdout
        self.assertNotIn("INTERP", headers)  # no dynamic loader, no shared libc
        fns = defined_functions(self.exe)
        self.assertIn("pthread_mutex_lock", fns)
        self.assertNotIn("pthread_mutex_timedlock", fns)

    def test_probes_are_on_the_executable(self):
        line = next(l for l in self.result.stderr.splitlines() if l.startswith("Tracing pid "))
        self.assertIn(f"probes on {os.path.realpath(self.exe)}", line)

    def test_counts_match_the_record(self):
        lk.assert_lockwork_counts(self, self.report, self.record)

    def test_locks_and_callers_are_named_from_the_executable(self):
        locks = {int(l["address"], 16): l for l in self.report["locks"]}
        orders = locks[int(self.record["locks"]["orders_lock"], 16)]
        self.assertEqual(orders["name"], "orders_lock")
        frames = orders["stacks"][0]["frames"]
        self.assertTrue(frames[1].startswith("place_order+"), frames)

    def test_no_breakpoint_went_missing(self):
        self.assertEqual([w for w in self.report["warnings"] if "went missing" in w], [])


if __name__ == "__main__":
    lk.main()
