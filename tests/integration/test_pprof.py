#!/usr/bin/env python3
"""--pprof FILE on real BPF: each tool's profile, read back with a protobuf decoder of the public
schema and with Go's pprof, must hold the same totals, labels and frames as the same run's JSON
(exactly: both come from one report), and the counts the workload recorded itself."""
import collections
import os
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk
import pprof_testlib as pp


def frame_function(frame):
    """The function of a JSON frame: "name+0xoff [module]", "[unknown] [module+0xoff]", "[lost stack]"."""
    for special in ("[lost stack]", "[unknown]"):
        if frame.startswith(special):
            return special
    return frame.split("+")[0]


def frames_key(frames):
    return tuple(frame_function(f) for f in frames)


class LockstatFull(unittest.TestCase):
    """lockstat --json J --pprof P -n 0 -- lockwork RECORD."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.record_path, cls.json_path, cls.pprof_path = (os.path.join(d, n) for n in ("rec.json", "ls.json", "ls.pb.gz"))
        cls.result = None
        if lk.bpf_unavailable_reason():
            return
        cls.result = subprocess.run(
            [lk.binary("lockstat"), "-n", "0", "--json", cls.json_path, "--pprof", cls.pprof_path,
             "--", lk.binary("lockwork"), cls.record_path], capture_output=True, text=True, timeout=300)
        if cls.result.returncode == 0:
            cls.record = lk.load_json(cls.record_path)
            cls.report = lk.load_json(cls.json_path)
            cls.profile = pp.Profile(cls.pprof_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def lock_json(self, name):
        addr = int(self.record["locks"][name], 16)
        return next(l for l in self.report["locks"] if int(l["address"], 16) == addr)

    def test_sample_types_are_go_mutex_profile_names_plus_hold(self):
        self.assertEqual(self.profile.types,
                         [("contentions", "count"), ("delay", "nanoseconds"), ("hold", "nanoseconds")])
        self.assertEqual(self.profile.default_type, "delay")

    def test_totals_per_lock_equal_the_json(self):
        c = self.profile.sums("address", "contentions")
        d = self.profile.sums("address", "delay")
        h = self.profile.sums("address", "hold")
        self.assertEqual(set(c), {l["address"] for l in self.report["locks"]})
        for l in self.report["locks"]:
            self.assertEqual(c[l["address"]], l["acquisitions"] + l["timeouts"], l["address"])
            self.assertEqual(d[l["address"]], l["wait_ns"], l["address"])
            self.assertEqual(h[l["address"]], l["hold_ns"], l["address"])

    def test_totals_per_thread_equal_the_json(self):
        for l in self.report["locks"]:
            got = collections.Counter()
            for s in self.profile.samples:
                if s["labels"]["address"] == l["address"]:
                    got[s["labels"]["tid"]] += s["values"]["delay"]
            self.assertEqual(dict(got), {t["tid"]: t["wait_ns"] for t in l["threads"]}, l["address"])

    def test_totals_per_stack_equal_the_json(self):
        for l in self.report["locks"]:
            want = collections.Counter()
            for st in l["stacks"]:
                want[frames_key(st["frames"])] += st["hold_ns"]
            got = collections.Counter()
            for s in self.profile.samples:
                if s["labels"]["address"] == l["address"]:
                    got[tuple(f["function"] or "[unknown]" for f in s["frames"])] += s["values"]["hold"]
            self.assertEqual(dict(got), dict(want), l["address"])

    def test_labels_name_the_lock_its_kind_process_and_thread(self):
        names = {l["address"]: (l["name"] or l["address"], l["kind"]) for l in self.report["locks"]}
        for s in self.profile.samples:
            lab = s["labels"]
            self.assertEqual((lab["lock"], lab["kind"]), names[lab["address"]])
            self.assertEqual(lab["pid"], self.record["pid"])
            self.assertIsInstance(lab["tid"], int)
        self.assertEqual(self.profile.sums("lock", "contentions")["orders_lock"],
                         sum(r["orders_acquisitions"] for r in self.record["contend"]))
        account = self.lock_json("account_lock")["name"]
        self.assertRegex(account, r"^#\d+$")
        self.assertEqual(self.profile.sums("lock", "contentions")[account],
                         sum(r["account_acquisitions"] for r in self.record["contend"]))

    def test_contentions_per_thread_equal_the_workload_record(self):
        for rec in self.record["contend"]:
            n = sum(s["values"]["contentions"] for s in self.profile.samples
                    if s["labels"]["lock"] == "orders_lock" and s["labels"]["tid"] == rec["tid"])
            self.assertEqual(n, rec["orders_acquisitions"])

    def test_frames_have_functions_source_files_and_mappings_with_build_ids(self):
        stacks = [s["frames"] for s in self.profile.samples if s["labels"]["lock"] == "orders_lock"]
        self.assertTrue(stacks)
        for frames in stacks:
            self.assertEqual(frames[0]["function"], "pthread_mutex_lock")
            self.assertTrue(os.path.basename(frames[0]["mapping"]).startswith("libc.so"), frames[0])
            self.assertEqual(frames[0]["build_id"], pp.build_id(frames[0]["mapping"]))
            self.assertEqual(frames[1]["function"], "place_order")
            self.assertTrue(frames[1]["file"].endswith("lockwork.c"), frames[1])
            self.assertGreater(frames[1]["line"], 0)
            self.assertEqual(os.path.realpath(frames[1]["mapping"]), os.path.realpath(lk.binary("lockwork")))
            self.assertEqual(frames[1]["build_id"], pp.build_id(lk.binary("lockwork")))
        # The program itself comes first: pprof names a profile after its first mapping.
        first = self.profile.mappings[min(self.profile.mappings)]
        self.assertEqual(os.path.basename(self.profile.strings[first.filename]), "lockwork")

    def test_go_pprof_reads_the_same_totals(self):
        if not pp.go_available():
            lk.skip_unless_ci(self, "go (golang-go) not installed")
        sums = pp.go_raw_sums(self.pprof_path, "lock", 3)
        for l in self.report["locks"]:
            name = l["name"] or l["address"]
            self.assertEqual(sums[name], [l["acquisitions"] + l["timeouts"], l["wait_ns"], l["hold_ns"]], name)

    def test_failed_run_keeps_an_existing_profile(self):
        path = os.path.join(self.tmp.name, "old.pb.gz")
        with open(path, "wb") as f:
            f.write(b"earlier profile")
        r = subprocess.run([lk.binary("lockstat"), "-p", str(lk.unused_pid()), "--pprof", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"earlier profile")


class LockstatContention(unittest.TestCase):
    """lockstat --mode contention --json J --pprof P -n 0 -- contended RECORD."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.record_path, cls.json_path, cls.pprof_path = (os.path.join(d, n) for n in ("rec.json", "c.json", "c.pb.gz"))
        cls.result = None
        if lk.bpf_unavailable_reason():
            return
        cls.result = subprocess.run(
            [lk.binary("lockstat"), "--mode", "contention", "-n", "0", "--json", cls.json_path,
             "--pprof", cls.pprof_path, "--", lk.binary("contended"), cls.record_path],
            capture_output=True, text=True, timeout=300)
        if cls.result.returncode == 0:
            cls.record = lk.load_json(cls.record_path)
            cls.report = lk.load_json(cls.json_path)
            cls.profile = pp.Profile(cls.pprof_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def test_sample_types_are_go_mutex_profile_names(self):
        self.assertEqual(self.profile.types, [("contentions", "count"), ("delay", "nanoseconds")])

    def test_totals_per_lock_and_stack_equal_the_json(self):
        c = self.profile.sums("address", "contentions")
        d = self.profile.sums("address", "delay")
        self.assertEqual(set(c), {l["address"] for l in self.report["locks"]})
        for l in self.report["locks"]:
            self.assertEqual((c[l["address"]], d[l["address"]]), (l["contentions"], l["wait_ns"]), l["address"])
            want = collections.Counter()
            for st in l["stacks"]:
                want[frames_key(st["frames"])] += st["wait_ns"]
            got = collections.Counter()
            for s in self.profile.samples:
                if s["labels"]["address"] == l["address"]:
                    got[tuple(f["function"] or "[unknown]" for f in s["frames"])] += s["values"]["delay"]
            self.assertEqual(dict(got), dict(want), l["address"])

    def test_contentions_equal_the_workload_record(self):
        hot = self.profile.sums("lock", "contentions")["hot_lock"]
        self.assertEqual(hot, len([w for w in self.record["waits"] if w["lock"] == "hot_lock"]))
        for s in self.profile.samples:
            self.assertEqual(s["labels"]["pid"], self.record["pid"])
            if s["labels"]["lock"] == "hot_lock":
                self.assertEqual(s["labels"]["kind"], "mutex")

    def test_go_pprof_reads_the_same_totals(self):
        if not pp.go_available():
            lk.skip_unless_ci(self, "go (golang-go) not installed")
        sums = pp.go_raw_sums(self.pprof_path, "lock", 2)
        for l in self.report["locks"]:
            name = l["name"] or l["address"]
            self.assertEqual(sums[name], [l["contentions"], l["wait_ns"]], name)


class Locktrace(unittest.TestCase):
    """locktrace -p PID --format json -o J --pprof P on futex_scenarios block 10 20."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.record_path, cls.json_path, cls.pprof_path = (os.path.join(d, n) for n in ("rec.json", "lt.json", "lt.pb.gz"))
        cls.rc = None
        if lk.bpf_unavailable_reason():
            return
        wl = subprocess.Popen([lk.binary("futex_scenarios"), cls.record_path, "block", "10", "20"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            tool = lk.Proc([lk.binary("locktrace"), "-p", str(wl.pid), "--format", "json", "-o", cls.json_path,
                            "--pprof", cls.pprof_path], tmpdir=d)
            tool.wait_for_stderr("Tracing ")
            wl.stdin.write("go\n")
            wl.stdin.close()
            wl.wait(timeout=120)
            cls.rc, _ = tool.finish(timeout=120)
            cls.err = tool.stderr()
        finally:
            if wl.poll() is None:
                wl.kill()
                wl.wait()
        if cls.rc == 0:
            cls.record = lk.load_json(cls.record_path)
            cls.report = lk.load_json(cls.json_path)
            cls.profile = pp.Profile(cls.pprof_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        lk.require_bpf(self)
        self.assertEqual(self.rc, 0, self.err)

    def test_totals_per_thread_and_word_equal_the_json(self):
        want_c, want_d = collections.Counter(), collections.Counter()
        for r in self.report["rows"]:
            if r["wait_count"] or r["blocked_ns"]:
                want_c[(r["tid"], r["address"])] += r["wait_count"]
                want_d[(r["tid"], r["address"])] += r["blocked_ns"]
        got_c, got_d = collections.Counter(), collections.Counter()
        for s in self.profile.samples:
            key = (s["labels"]["tid"], s["labels"]["address"])
            got_c[key] += s["values"]["contentions"]
            got_d[key] += s["values"]["delay"]
            self.assertEqual(s["labels"]["pid"], self.record["pid"])
        self.assertEqual(dict(got_c), dict(want_c))
        self.assertEqual(dict(got_d), dict(want_d))

    def test_waiter_sample_counts_its_waits_with_its_stack(self):
        rec = self.record
        mine = [s for s in self.profile.samples
                if s["labels"]["tid"] == rec["waiter_tid"] and int(s["labels"]["address"], 16) == int(rec["addr"], 16)]
        self.assertEqual(sum(s["values"]["contentions"] for s in mine), rec["waits"])
        for s in mine:
            names = [f["function"] for f in s["frames"]]
            self.assertIn("block_on_word", names)
            self.assertIn("waiter_main", names)
            self.assertLess(names.index("block_on_word"), names.index("waiter_main"))  # leaf first
            f = s["frames"][names.index("block_on_word")]
            self.assertEqual(f["build_id"], pp.build_id(lk.binary("futex_scenarios")))
            self.assertTrue(f["file"].endswith("futex_scenarios.c"), f)

    def test_go_pprof_reads_the_same_totals(self):
        if not pp.go_available():
            lk.skip_unless_ci(self, "go (golang-go) not installed")
        sums = pp.go_raw_sums(self.pprof_path, "address", 2)
        want = collections.defaultdict(lambda: [0, 0])
        for r in self.report["rows"]:
            if r["wait_count"] or r["blocked_ns"]:
                want[r["address"]][0] += r["wait_count"]
                want[r["address"]][1] += r["blocked_ns"]
        self.assertEqual(sums, dict(want))


if __name__ == "__main__":
    lk.main()
