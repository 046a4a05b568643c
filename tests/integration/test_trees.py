#!/usr/bin/env python3
"""Process trees, on real BPF: `-- COMMAND` traces every process the command starts (fork, and
fork then exec), from its first instruction; `-p PID --follow-forks` adds the processes PID forks
from then on; `-p PID` alone traces PID only and names each child it forks once.

The workload (forktree) is a tree of a root, NCHILDREN children and one grandchild; each process
makes its own known numbers of lock pairs, EAGAIN futex waits and futex wakes as soon as it starts
and writes them to DIR/PID.json. Counts are compared per process, exactly."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import lockkit_testlib as lk

CHILDREN = 3


def records(dirname):
    out = {}
    for path in glob.glob(os.path.join(dirname, "*.json")):
        if os.path.basename(path)[0].isdigit():
            rec = lk.load_json(path)
            out[rec["pid"]] = rec
    return out


def root_of(recs):
    roots = [r for r in recs.values() if r["index"] == 0]
    assert len(roots) == 1, recs
    return roots[0]


class TreeTest(unittest.TestCase):
    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = os.path.join(self.tmp.name, "records")
        os.mkdir(self.dir)

    def workload(self, *extra):
        return [lk.binary("forktree"), self.dir, str(CHILDREN)] + list(extra)

    def run_tool(self, argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = records(self.dir)
        root = root_of(recs)
        self.assertEqual(sorted(recs), sorted([root["pid"]] + root["children"]), "every process wrote its record")
        return r, recs

    def start_held(self, *extra):
        """The workload, held until it reads a line: (process, write-a-line function)."""
        p = subprocess.Popen(self.workload(*extra, "wait"), stdin=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p

    def traced_by_pid(self, tool, argv_before_target, held, follow):
        """Runs `tool` on the held workload with -p (and --follow-forks when `follow`); returns
        (stderr, output file's JSON, records)."""
        out = os.path.join(self.tmp.name, f"{tool}.json")
        argv = [lk.binary(tool)] + argv_before_target(out) + ["-p", str(held.pid)] + (["--follow-forks"] if follow else [])
        t = lk.Proc(argv, tmpdir=self.tmp.name)
        t.wait_for_stderr("Tracing pid")
        held.stdin.write("go\n")
        held.stdin.close()
        self.assertEqual(held.wait(timeout=120), 0)
        rc, _ = t.finish(timeout=120)
        self.assertEqual(rc, 0, t.stderr())
        return t.stderr(), lk.load_json(out), records(self.dir)


class LocktraceTree(TreeTest):
    def futex_counts(self, report):
        """(pid, address) -> (wait calls, wake calls) from locktrace's JSON rows."""
        out = {}
        for row in report["rows"]:
            key = (row["pid"], int(row["address"], 16))
            w, k = out.get(key, (0, 0))
            out[key] = (w + row["wait_count"], k + row["wake_count"])
        return out

    def assert_traced(self, report, recs, pids):
        counts = self.futex_counts(report)
        for pid in pids:
            rec = recs[pid]
            self.assertEqual(counts.get((pid, int(rec["word"], 16))), (rec["eagain_waits"], rec["wakes"]),
                             f"process {rec['index']} (pid {pid})")

    def run_command(self, *extra):
        out = os.path.join(self.tmp.name, "locktrace.json")
        r, recs = self.run_tool([lk.binary("locktrace"), "--format", "json", "-o", out, "--"] + self.workload(*extra))
        return r, lk.load_json(out), recs

    def test_a_command_is_traced_with_every_process_it_forks(self):
        r, report, recs = self.run_command()
        self.assert_traced(report, recs, recs.keys())
        self.assertEqual(report["pid"], root_of(recs)["pid"])
        self.assertTrue(set(recs) <= set(report["pids"]), (sorted(recs), report["pids"]))
        self.assertNotIn(" forked ", r.stderr)
        self.assertNotIn("is not traced", r.stderr)

    def test_a_command_is_traced_through_fork_and_exec(self):
        r, report, recs = self.run_command("exec")
        self.assertTrue(all(rec["exec"] for rec in recs.values() if rec["index"] > 0))
        self.assert_traced(report, recs, recs.keys())
        self.assertTrue(set(recs) <= set(report["pids"]))

    def test_a_pid_alone_is_traced_alone_and_its_children_are_named(self):
        held = self.start_held()
        err, report, recs = self.traced_by_pid("locktrace", lambda out: ["--format", "json", "-o", out], held, False)
        root = root_of(recs)
        self.assert_traced(report, recs, [root["pid"]])
        self.assertEqual({row["pid"] for row in report["rows"]}, {root["pid"]})
        direct = root["children"][:CHILDREN]  # the grandchild is not forked by the target
        for c in direct:
            line = f"locktrace: pid {root['pid']} forked {c} (not traced: without --follow-forks child processes are not followed)"
            self.assertEqual(err.splitlines().count(line), 1, err)
        self.assertEqual(len([l for l in err.splitlines() if l.startswith("locktrace: pid ")]), CHILDREN, err)
        self.assertEqual(report["pids"], [root["pid"]])

    def test_a_pid_with_follow_forks_is_traced_with_its_new_children(self):
        held = self.start_held()
        err, report, recs = self.traced_by_pid("locktrace", lambda out: ["--format", "json", "-o", out], held, True)
        self.assert_traced(report, recs, recs.keys())
        self.assertNotIn(" forked ", err)
        self.assertTrue(set(recs) <= set(report["pids"]))


class ContentionTree(TreeTest):
    def eagain(self, report):
        """(pid, address) -> EAGAIN waits from contention mode's JSON."""
        return {(l["pid"], int(l["address"], 16)): l["eagain_waits"] for l in report["locks"]}

    def assert_traced(self, report, recs, pids):
        got = self.eagain(report)
        for pid in pids:
            rec = recs[pid]
            self.assertEqual(got.get((pid, int(rec["word"], 16))), rec["eagain_waits"], f"process {rec['index']} (pid {pid})")

    def run_command(self, *extra):
        out = os.path.join(self.tmp.name, "lockstat.json")
        r, recs = self.run_tool([lk.binary("lockstat"), "--mode", "contention", "-n", "0", "--json", out, "--"]
                                + self.workload(*extra))
        return r, lk.load_json(out), recs

    def test_a_command_is_traced_with_every_process_it_forks(self):
        r, report, recs = self.run_command()
        self.assert_traced(report, recs, recs.keys())
        self.assertTrue(set(recs) <= set(report["pids"]))
        self.assertIn(f"pid {root_of(recs)['children'][0]}:", r.stdout)  # text groups by process

    def test_a_command_is_traced_through_fork_and_exec(self):
        r, report, recs = self.run_command("exec")
        self.assert_traced(report, recs, recs.keys())

    def test_a_pid_alone_is_traced_alone(self):
        held = self.start_held()
        err, report, recs = self.traced_by_pid("lockstat", lambda out: ["--mode", "contention", "-n", "0", "--json", out],
                                               held, False)
        root = root_of(recs)
        self.assert_traced(report, recs, [root["pid"]])
        self.assertEqual({l["pid"] for l in report["locks"]}, {root["pid"]})
        self.assertEqual(len([l for l in err.splitlines() if l.startswith("lockstat: pid ")]), CHILDREN, err)

    def test_a_pid_with_follow_forks_is_traced_with_its_new_children(self):
        held = self.start_held()
        err, report, recs = self.traced_by_pid("lockstat", lambda out: ["--mode", "contention", "-n", "0", "--json", out],
                                               held, True)
        self.assert_traced(report, recs, recs.keys())
        self.assertNotIn(" forked ", err)


class FullTree(TreeTest):
    """lockstat --mode full: uprobes in every process of the tree, each attached while the new
    process waits before its first instruction."""

    def locks(self, report):
        """(pid, address) -> lock from lockstat's JSON."""
        return {(l["pid"], int(l["address"], 16)): l for l in report["locks"]}

    def assert_traced(self, report, recs, pids):
        locks = self.locks(report)
        for pid in pids:
            rec = recs[pid]
            lock = locks.get((pid, int(rec["lock"], 16)))
            self.assertIsNotNone(lock, f"process {rec['index']} (pid {pid}): tree_lock missing")
            self.assertEqual(lock["name"], "tree_lock")
            self.assertEqual((lock["acquisitions"], lock["holds"]), (rec["lock_pairs"], rec["lock_pairs"]),
                             f"process {rec['index']} (pid {pid})")

    def run_command(self, *extra):
        out = os.path.join(self.tmp.name, "lockstat.json")
        r, recs = self.run_tool([lk.binary("lockstat"), "-n", "0", "--json", out, "--"] + self.workload(*extra))
        return r, lk.load_json(out), recs

    def test_a_command_is_traced_with_every_process_it_forks(self):
        r, report, recs = self.run_command()
        self.assert_traced(report, recs, recs.keys())
        self.assertTrue(set(recs) <= set(report["pids"]), (sorted(recs), report["pids"]))
        self.assertNotIn(" forked ", r.stderr)
        self.assertNotIn("is not traced", r.stderr)
        for pid in recs:  # text groups by process
            self.assertEqual(r.stdout.count(f"\n pid {pid}:\n"), 1, r.stdout)

    def test_a_command_is_traced_through_fork_and_exec(self):
        r, report, recs = self.run_command("exec")
        self.assertTrue(all(rec["exec"] for rec in recs.values() if rec["index"] > 0))
        self.assert_traced(report, recs, recs.keys())
        self.assertNotIn(" forked ", r.stderr)
        self.assertNotIn("is not traced", r.stderr)

    def test_a_pid_alone_is_traced_alone_and_its_children_are_named(self):
        held = self.start_held()
        err, report, recs = self.traced_by_pid("lockstat", lambda out: ["-n", "0", "--json", out], held, False)
        root = root_of(recs)
        self.assert_traced(report, recs, [root["pid"]])
        self.assertEqual({l["pid"] for l in report["locks"]}, {root["pid"]})
        for c in root["children"][:CHILDREN]:
            line = f"lockstat: pid {root['pid']} forked {c} (not traced: without --follow-forks child processes are not followed)"
            self.assertEqual(err.splitlines().count(line), 1, err)
        self.assertEqual(len([l for l in err.splitlines() if l.startswith("lockstat: pid ")]), CHILDREN, err)
        self.assertEqual(report["pids"], [root["pid"]])

    def test_a_pid_with_follow_forks_is_traced_with_its_new_children(self):
        held = self.start_held()
        err, report, recs = self.traced_by_pid("lockstat", lambda out: ["-n", "0", "--json", out], held, True)
        self.assert_traced(report, recs, recs.keys())
        self.assertNotIn(" forked ", err)

    def test_a_child_waiting_for_its_probes_runs_on_when_lockstat_is_killed(self):
        # lockstat stopped (SIGSTOP) cannot attach anything: each child the workload forks then
        # waits, stopped, before its first instruction. SIGKILL of lockstat must let it run on.
        held = self.start_held()
        t = lk.Proc([lk.binary("lockstat"), "-p", str(held.pid), "--follow-forks"], tmpdir=self.tmp.name)
        t.wait_for_stderr("Tracing pid")
        os.kill(t.p.pid, signal.SIGSTOP)
        held.stdin.write("go\n")
        held.stdin.close()
        deadline = time.monotonic() + 60
        stopped = []
        while time.monotonic() < deadline and not stopped:
            stopped = [p for p in children_of(held.pid) if proc_state(p) == "T"]
            time.sleep(0.02)
        self.assertTrue(stopped, "no child of the workload waited for its probes")
        os.kill(t.p.pid, signal.SIGKILL)
        t.finish(timeout=60)
        self.assertEqual(held.wait(timeout=60), 0, "the workload's tree did not run to its end")
        recs = records(self.dir)
        self.assertEqual(sorted(recs), sorted([held.pid] + root_of(recs)["children"]))


class RealPrograms(unittest.TestCase):
    """Debian programs nobody here wrote, whose workers are forked processes."""

    def setUp(self):
        lk.require_bpf(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def need(self, program):
        if shutil.which(program) is None:
            lk.skip_unless_ci(self, f"{program} is not installed (scripts/setup installs it)")

    def test_stress_ng_mutex_workers_are_traced(self):
        # stress-ng 0.15's mutex stressor: each worker process counts one bogo op per acquisition of
        # its mutex by its threads (measured: the acquisitions of each worker's busiest mutex add up
        # to the bogo ops it reports, with nothing left over), and reports the total.
        self.need("stress-ng")
        ops, workers = 2000, 2
        out = os.path.join(self.tmp.name, "lockstat.json")
        yaml_path = os.path.join(self.tmp.name, "metrics.yaml")
        r = subprocess.run([lk.binary("lockstat"), "-n", "0", "--json", out, "--", "stress-ng", "--mutex", str(workers),
                            "--mutex-ops", str(ops), "--metrics", "--yaml", yaml_path],
                           capture_output=True, text=True, timeout=600, cwd=self.tmp.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        bogo = None
        in_mutex = False
        with open(yaml_path) as f:
            for line in f:
                if line.strip() == "- stressor: mutex":
                    in_mutex = True
                elif in_mutex and line.strip().startswith("bogo-ops:"):
                    bogo = int(line.split(":")[1])
                    break
        self.assertIsNotNone(bogo, "stress-ng reported no bogo ops")
        self.assertGreaterEqual(bogo, ops)
        report = lk.load_json(out)
        root = report["pid"]
        busiest = {}
        for l in report["locks"]:
            if l["pid"] != root and l["acquisitions"] > busiest.get(l["pid"], 0):
                busiest[l["pid"]] = l["acquisitions"]
        self.assertEqual(len(busiest), workers, f"workers traced: {busiest}")
        self.assertTrue(set(busiest) <= set(report["pids"]))
        for pid, n in busiest.items():
            self.assertGreaterEqual(n, ops // workers, f"worker {pid}")
        self.assertEqual(sum(busiest.values()), bogo, busiest)
        self.assertNotIn(" forked ", r.stderr)

    def test_memcached_daemon_is_traced_after_its_parent_exits(self):
        # memcached -d forks the daemon and its first process exits: the run follows the daemon,
        # which serves a small local load, until it is stopped.
        self.need("memcached")
        out = os.path.join(self.tmp.name, "lockstat.json")
        pidfile = os.path.join(self.tmp.name, "memcached.pid")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        t = lk.Proc([lk.binary("lockstat"), "-n", "0", "--json", out, "--", "memcached", "-u", "root", "-l", "127.0.0.1",
                     "-p", str(port), "-U", "0", "-t", "2", "-d", "-P", pidfile], tmpdir=self.tmp.name)
        daemon = None
        try:
            t.wait_for_stderr("Tracing pid")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and daemon is None:
                try:
                    with open(pidfile) as f:
                        daemon = int(f.read().strip() or 0) or None
                except OSError:
                    time.sleep(0.05)
            self.assertIsNotNone(daemon, "memcached wrote no pid file")
            requests = 200
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                f = s.makefile("rwb")
                for i in range(requests // 2):
                    f.write(b"set k%d 0 0 5\r\nhello\r\n" % i)
                    f.flush()
                    self.assertEqual(f.readline(), b"STORED\r\n")
                for i in range(requests // 2):
                    f.write(b"get k%d\r\n" % i)
                    f.flush()
                    self.assertTrue(f.readline().startswith(b"VALUE"))
                    f.readline()
                    self.assertEqual(f.readline(), b"END\r\n")
        finally:
            if daemon:
                os.kill(daemon, signal.SIGTERM)
        rc, _ = t.finish(timeout=120)
        self.assertEqual(rc, 0, t.stderr())
        report = lk.load_json(out)
        self.assertIn(daemon, report["pids"])
        mine = [l for l in report["locks"] if l["pid"] == daemon]
        # Each get and set takes at least one pthread mutex of the daemon (its item locks).
        self.assertGreaterEqual(sum(l["acquisitions"] for l in mine), requests)
        for l in report["locks"]:
            for st in l["stacks"]:
                for frame in st["frames"]:
                    self.assertFalse(frame.startswith("[unknown] 0x"), st["frames"])


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


if __name__ == "__main__":
    lk.main()
