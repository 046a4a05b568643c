#!/usr/bin/env python3
"""--pprof FILE on real BPF: each tool's profile, read back with a protobuf decoder of the public
schema and with Go's pprof, must hold the same totals, labels and frames as the same run's JSON
(exactly: both come from one report), and the counts the workload recorded itself."""
import collections
import os
import re
import signal
import struct
import subprocess
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


class LockstatFull(lk.SharedRun, unittest.TestCase):
    """lockstat --json J --pprof P -n 0 -- lockwork RECORD."""

    files = {"record": "rec.json", "json": "ls.json", "pprof": "ls.pb.gz"}
    tool, args = "lockstat", ("-n", "0", "--json", "{json}", "--pprof", "{pprof}")
    workload = "lockwork"
    load = {"record": ("record", lk.load_json), "report": ("json", lk.load_json), "profile": ("pprof", pp.Profile)}

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


class LockstatContention(lk.SharedRun, unittest.TestCase):
    """lockstat --mode contention --json J --pprof P -n 0 -- contended RECORD."""

    files = {"record": "rec.json", "json": "c.json", "pprof": "c.pb.gz"}
    tool, args = "lockstat", ("--mode", "contention", "-n", "0", "--json", "{json}", "--pprof", "{pprof}")
    workload = "contended"
    load = {"record": ("record", lk.load_json), "report": ("json", lk.load_json), "profile": ("pprof", pp.Profile)}

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


class Locktrace(lk.SharedRun, unittest.TestCase):
    """locktrace -p PID --format json -o J --pprof P on futex_scenarios block 10 20."""

    files = {"record": "rec.json", "json": "lt.json", "pprof": "lt.pb.gz"}
    load = {"record": ("record", lk.load_json), "report": ("json", lk.load_json), "profile": ("pprof", pp.Profile)}

    @classmethod
    def run_tool(cls):
        wl = subprocess.Popen([lk.binary("futex_scenarios"), cls.record_path, "block", "10", "20"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            argv = [lk.binary("locktrace"), "-p", str(wl.pid), "--format", "json", "-o", cls.json_path,
                    "--pprof", cls.pprof_path]
            tool = lk.Proc(argv, tmpdir=cls.tmp.name)
            tool.wait_for_stderr("Tracing ")
            wl.stdin.write("go\n")
            wl.stdin.close()
            wl.wait(timeout=120)
            rc, out = tool.finish(timeout=120)
            return subprocess.CompletedProcess(argv, rc, out, tool.stderr())
        finally:
            if wl.poll() is None:
                wl.kill()
                wl.wait()

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


def read_mmap_record(path):
    """mmap_contend's record: pid, worker tids."""
    rec = {"tids": []}
    with open(path) as f:
        for line in f:
            key, *vals = line.split()
            if key == "tid":
                rec["tids"].append(int(vals[0]))
            elif key == "pid":
                rec["pid"] = int(vals[0])
    return rec


def parse_mklockstat_log(path):
    """mklockstat's log with --names: {"samples": [...], "stacks": {stackid: [frames]}}."""
    samples, stacks = [], {}
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split(",")
            if fields[0] == "t":
                stacks[int(fields[1])] = fields[2:]
            elif fields[0] == "s":
                pid, tid = re.fullmatch(r"P(\d+)_T(\d+)", fields[2]).groups()
                samples.append(dict(comm=fields[1], pid=int(pid), tid=int(tid), type=fields[3], lock=int(fields[4], 16),
                                    start=int(fields[5]), wait=int(fields[6]), count=int(fields[7]),
                                    stackid=int(fields[8]), name=fields[9] if len(fields) == 10 else None))
            else:
                raise AssertionError(f"unknown log line: {line!r}")
    return {"samples": samples, "stacks": stacks}


# The log's lock types and the profile's `kind` of each.
MK_KINDS = {"Mutex": "mutex", "Semaphore": "semaphore", "Semaphore:R": "rwsem-read", "Semaphore:W": "rwsem-write",
            "Spinlock": "spinlock", "RWLock:R": "rwlock-read", "RWLock:W": "rwlock-write", "RTMutex": "rtmutex",
            "RTMutex:R": "rtmutex-read", "RTMutex:W": "rtmutex-write", "PercpuRWSem:R": "percpu-rwsem-read",
            "PercpuRWSem:W": "percpu-rwsem-write"}


def kernel_notes_build_id(path="/sys/kernel/notes"):
    """The GNU build-id note (type 3, name "GNU") among the running kernel's notes, in hex ("" if none)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        name_at = pos + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        if ntype == 3 and data[name_at:name_at + namesz] == b"GNU\0":
            return data[desc_at:desc_at + descsz].hex()
        pos = desc_at + (descsz + 3) // 4 * 4
    return ""


def kallsyms():
    """{name: set of addresses} of /proc/kallsyms (static functions may share a name)."""
    syms = collections.defaultdict(set)
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, _, name, *_ = line.split()
            syms[name].add(int(addr, 16))
    return syms


class Mklockstat(lk.SharedRun, unittest.TestCase):
    """mklockstat --names -o LOG --pprof P system-wide while mmap_contend 8 2 runs, ended by Ctrl-C.
    Every sample of the profile is a line of the same run's log: same period, thread, lock, type,
    counts and frames. The workload guarantees that its threads wait for their mm's mmap_lock (an
    rw_semaphore) for writing, several at once."""

    files = {"record": "rec", "log": "mk.log", "pprof": "mk.pb.gz"}
    load = {"record": ("record", read_mmap_record), "log": ("log", parse_mklockstat_log),
            "profile": ("pprof", pp.Profile)}

    @classmethod
    def cannot_run(cls):
        return None if lk.kernel_has_lock_tracepoints() else "this kernel has no lock:contention_begin/end tracepoints"

    @classmethod
    def run_tool(cls):
        argv = [lk.binary("mklockstat"), "--time", "120", "--names", "-o", cls.log_path, "--pprof", cls.pprof_path]
        tool = lk.Proc(argv, tmpdir=cls.tmp.name)
        try:
            tool.wait_for_stderr("Tracing locks ")
            work = subprocess.run([lk.binary("mmap_contend"), "8", "2", cls.record_path], capture_output=True,
                                  text=True, timeout=120)
            tool.p.send_signal(signal.SIGINT)
            rc, out = tool.finish(timeout=120)
        finally:
            if tool.p.poll() is None:
                tool.p.kill()
                tool.p.wait()
        if work.returncode != 0:  # the run is the workload's too: its record is what the tests read
            return subprocess.CompletedProcess(work.args, work.returncode, work.stdout, "mmap_contend: " + work.stderr)
        return subprocess.CompletedProcess(argv, rc, out, tool.stderr())

    def summary_waits(self):
        m = re.search(r"; (\d+) waits.*; lost: (\d+) samples, (\d+) stacks", self.result.stderr)
        self.assertIsNotNone(m, self.result.stderr)
        return int(m[1]), int(m[2])

    def test_sample_types_are_go_mutex_profile_names(self):
        self.assertEqual(self.profile.types, [("contentions", "count"), ("delay", "nanoseconds")])
        self.assertEqual(self.profile.default_type, "delay")

    def test_one_sample_per_log_line_with_its_counts(self):
        want = collections.Counter(
            (s["start"], s["pid"], s["tid"], s["lock"], MK_KINDS[s["type"]], s["comm"], s["count"], s["wait"])
            for s in self.log["samples"])
        got = collections.Counter()
        for s in self.profile.samples:
            lab = s["labels"]
            got[(lab["period_start"], lab["pid"], lab["tid"], int(lab["address"], 16), lab["kind"], lab.get("comm", ""),
                 s["values"]["contentions"], s["values"]["delay"])] += 1
        self.assertTrue(want)
        self.assertEqual(got, want)

    def test_totals_equal_the_log_and_the_waits_counted_in_bpf(self):
        waits, lost = self.summary_waits()
        self.assertEqual(lost, 0, self.result.stderr)
        total_c = sum(s["values"]["contentions"] for s in self.profile.samples)
        total_d = sum(s["values"]["delay"] for s in self.profile.samples)
        self.assertEqual(total_c, sum(s["count"] for s in self.log["samples"]))
        self.assertEqual(total_d, sum(s["wait"] for s in self.log["samples"]))
        self.assertEqual(total_c, waits)
        self.assertEqual(len(self.profile.samples), len(self.log["samples"]))

    def test_lock_label_is_the_kernel_name_else_the_address(self):
        for s in self.log["samples"]:
            self.assertIsNotNone(s["name"])
        names = {s["lock"]: s["name"] or f"{s['lock']:#x}" for s in self.log["samples"]}
        for s in self.profile.samples:
            self.assertEqual(s["labels"]["lock"], names[int(s["labels"]["address"], 16)])

    def test_stacks_are_the_first_stacks_of_the_log_in_the_kernel_mapping(self):
        build_id = kernel_notes_build_id()
        syms = kallsyms()
        by_key = {(s["start"], s["pid"], s["tid"], s["lock"], MK_KINDS[s["type"]]): s for s in self.log["samples"]}
        kernel_frames = 0
        for s in self.profile.samples:
            lab = s["labels"]
            line = by_key[(lab["period_start"], lab["pid"], lab["tid"], int(lab["address"], 16), lab["kind"])]
            if line["stackid"] < 0:
                self.assertEqual([f["function"] for f in s["frames"]], ["[lost stack]"])
                continue
            text = self.log["stacks"][line["stackid"]]
            self.assertEqual(len(s["frames"]), len(text), text)
            for f, t in zip(s["frames"], text):
                m = re.fullmatch(r"([\w.]+)\+0x([0-9a-f]+)", t)
                if m is None:  # "[unknown] 0x...": code loaded at run time, gone before it was named
                    self.assertRegex(t, r"\A\[unknown\] 0x[0-9a-f]+\Z")
                    self.assertIsNone(f["function"])
                    self.assertEqual(f["address"], int(t.split()[1], 16))
                    continue
                self.assertEqual(f["function"], m[1])
                if min(syms["_stext"]) <= f["address"] < min(syms["_etext"]):
                    self.assertIn(f["address"] - int(m[2], 16), syms[m[1]], t)
                    self.assertEqual((f["mapping"], f["build_id"]), ("[kernel.kallsyms]", build_id), t)
                    kernel_frames += 1
                else:  # a module's or BPF program's function (maybe unloaded since): a mapping named after it
                    self.assertRegex(f["mapping"], r"\A\[[\w.-]+\]\Z", t)
        self.assertGreater(kernel_frames, 0)

    def test_kernel_mapping_spans_the_kernel_text(self):
        syms = kallsyms()
        kernel = [m for m in self.profile.mappings.values() if self.profile.strings[m.filename] == "[kernel.kallsyms]"]
        self.assertEqual(len(kernel), 1)
        m = kernel[0]
        self.assertEqual(({m.memory_start}, {m.memory_limit}), (syms["_stext"], syms["_etext"]))
        self.assertEqual(self.profile.strings[m.build_id], kernel_notes_build_id())
        self.assertTrue(m.has_functions)

    def test_workers_wait_for_a_shared_rwsem_for_writing(self):
        pid, tids = self.record["pid"], set(self.record["tids"])
        writers = collections.defaultdict(set)
        for s in self.profile.samples:
            lab = s["labels"]
            if lab["pid"] == pid:
                self.assertIn(lab["tid"], tids | {pid})
                self.assertEqual(lab["comm"], "mmap_contend")
                if lab["kind"] == "rwsem-write":
                    writers[lab["address"]].add(lab["tid"])
        self.assertTrue([a for a, t in writers.items() if len(t) >= 2], dict(writers))

    def test_go_pprof_reads_the_same_totals(self):
        if not pp.go_available():
            lk.skip_unless_ci(self, "go (golang-go) not installed")
        sums = pp.go_raw_sums(self.pprof_path, "address", 2)
        want = collections.defaultdict(lambda: [0, 0])
        for s in self.log["samples"]:
            want[f"{s['lock']:#x}"][0] += s["count"]
            want[f"{s['lock']:#x}"][1] += s["wait"]
        self.assertEqual(sums, dict(want))

    def test_failed_run_keeps_an_existing_profile(self):
        path = os.path.join(self.tmp.name, "old.pb.gz")
        with open(path, "wb") as f:
            f.write(b"earlier profile")
        r = subprocess.run([lk.binary("mklockstat"), "-p", str(lk.unused_pid()), "--pprof", path, "-o",
                            os.path.join(self.tmp.name, "failed.log")], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"earlier profile")


if __name__ == "__main__":
    lk.main()
