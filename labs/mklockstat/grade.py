"""How labs/check grades the mklockstat lab: the program traces mmap_contend (tests/workloads), whose
threads queue on their process's mmap_lock, an rw_semaphore; the log must agree with what BPF
counted over the whole run (--totals, kept apart from the periods), with the workload's record
(its pid and threads), and with the kernel's meaning of each contention_begin flags word."""

import json
import os
import re
import subprocess

import labkit

TITLE = "mklockstat: kernel lock waits in fixed periods"
KIND = "cpp"
PROGRAM = "lab-mklockstat"
MAIN_CPP = "mklockstat.cpp"
EMBEDS = [("kLabMklockstatHeaders", ["common.h", "mklockstat.h"]), ("kLabMklockstatProgram", ["mklockstat.bpf.c"])]
BPF_FILE = "mklockstat.bpf.c"

# 6 threads (more than CPUs: a holder of mmap_lock is preempted now and then, and its waiters sleep)
# churning mappings for 1.5 s: 30 periods of 50 ms, some hundreds of contended waits.
THREADS, SECONDS, PERIOD_NS = 6, 1.5, 50_000_000

SPIN, READ, WRITE, RT, PERCPU, MUTEX = 1, 2, 4, 8, 16, 32
# What the kernel's locking code means by each flags word it passes to contention_begin.
KERNEL_TYPES = {
    0: "Semaphore",                    # struct semaphore (down)
    READ: "Semaphore:R",               # struct rw_semaphore (down_read)
    WRITE: "Semaphore:W",              # (down_write)
    SPIN: "Spinlock",                  # queued spinlock slow path
    SPIN | READ: "RWLock:R",           # rwlock_t (read_lock)
    SPIN | WRITE: "RWLock:W",          # (write_lock)
    MUTEX | SPIN: "Mutex",             # struct mutex, spinning on its owner
    MUTEX: "Mutex",                    # then sleeping
    RT: "RTMutex",                     # rt_mutex
    RT | READ: "RTMutex:R",            # PREEMPT_RT rw_semaphore / rwlock_t
    RT | WRITE: "RTMutex:W",
    PERCPU | READ: "PercpuRWSem:R",    # percpu_rw_semaphore
    PERCPU | WRITE: "PercpuRWSem:W",
}
BITS = [(SPIN, "SPIN"), (READ, "READ"), (WRITE, "WRITE"), (RT, "RT"), (PERCPU, "PERCPU"), (MUTEX, "MUTEX")]

# The function a kernel stack taken at contention_begin starts in says which kind of lock it
# waits for, whatever the flags: (leaf pattern, the types that kind of lock may be reported as).
LEAVES = [
    (re.compile(r"rwsem_down_write_slowpath\+"), {"Semaphore:W"}),
    (re.compile(r"rwsem_down_read_slowpath\+"), {"Semaphore:R"}),
    (re.compile(r"queued_spin_lock_slowpath\+"), {"Spinlock"}),
    (re.compile(r"queued_read_lock_slowpath\+"), {"RWLock:R"}),
    (re.compile(r"queued_write_lock_slowpath\+"), {"RWLock:W"}),
    (re.compile(r"__mutex_lock"), {"Mutex"}),
]


def expected_type(flags):
    return KERNEL_TYPES.get(flags, f"Unknown_{flags:#x}")


def flag_names(flags):
    return "|".join(n for b, n in BITS if flags & b) or "0"


def workload():
    path = os.path.join(labkit.build_dir(), "bin", "mmap_contend")
    if not os.path.exists(path):
        raise labkit.LabError(f"no {path}: build the project first (cmake --build build -j2)")
    return path


def _read(path):
    return open(path).read() if os.path.exists(path) else ""


def run(program, bpf_text, tmp):
    """Returns (exit code, log, stderr, record, totals, --types output)."""
    paths = {n: os.path.join(tmp, f"mk.{n}") for n in ("log", "totals", "record")}
    for p in paths.values():
        if os.path.exists(p):
            os.unlink(p)
    try:
        t = subprocess.run([program, "--types"], capture_output=True, text=True, timeout=60)
        cmd = [program] + (["--bpf-text", bpf_text] if bpf_text else [])
        cmd += ["-o", paths["log"], "--totals", paths["totals"], "--", workload(), str(THREADS), str(SECONDS),
                paths["record"]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "", "the program did not finish within 300 s", "", "", ""
    return (r.returncode, _read(paths["log"]), r.stderr + t.stderr, _read(paths["record"]), _read(paths["totals"]),
            t.stdout)


def parse_record(text):
    rec = {"tids": set()}
    for line in text.splitlines():
        key, *vals = line.split()
        if key == "tid":
            rec["tids"].add(int(vals[0]))
        elif key in ("pid", "start_ns", "end_ns"):
            rec[key] = int(vals[0])
    return rec


def parse_log(text):
    """(samples, {stackid: (line number, frames)}, problems)."""
    samples, stacks, problems = [], {}, []
    for n, line in enumerate(text.splitlines(), 1):
        f = line.split(",")
        try:
            if f[0] == "t":
                stacks.setdefault(int(f[1]), (n, f[2:]))
            elif f[0] == "s" and len(f) == 9:
                m = re.fullmatch(r"P(\d+)_T(\d+)", f[2])
                if not m or not re.fullmatch(r"0x[0-9a-f]+", f[4]):
                    raise ValueError("bad thread or lock field")
                samples.append(dict(line=n, comm=f[1], pid=int(m[1]), tid=int(m[2]), type=f[3], lock=int(f[4], 16),
                                    start=int(f[5]), wait=int(f[6]), count=int(f[7]), stackid=int(f[8])))
            else:
                raise ValueError("not an s, line of 9 fields nor a t, line")
        except ValueError as e:
            problems.append(f"log line {n} does not parse ({e}): {line[:120]}")
    return samples, stacks, problems


def check_types(types_out):
    named = {}
    for line in types_out.splitlines():
        w = line.split()
        if len(w) == 2:
            named[int(w[0], 16)] = w[1]
    problems = []
    for flags in range(64):
        want = expected_type(flags)
        got = named.get(flags)
        if got != want:
            what = f"the kernel passes it for {want}" if flags in KERNEL_TYPES else "the kernel never passes it"
            problems.append(f"flags {flags:#x} ({flag_names(flags)}) is named {got!r}; {what}: expected {want!r}")
    return problems


def check(result):
    code, log, err, record, totals_text, types_out = result
    if code is None:
        return [err]
    problems = check_types(types_out)
    if not record or "end_ns" not in record:
        return problems + [f"mmap_contend wrote no final record (exit {code}): {err.strip()[-300:]}"]
    if code != 0:
        return problems + [f"the program exited {code}: {err.strip()[-300:]}"]
    try:
        tot = json.loads(totals_text)
    except ValueError:
        return problems + ["no --totals file (or not JSON)"]
    rec = parse_record(record)
    samples, stacks, bad = parse_log(log)
    problems += bad

    # What the kernel guarantees for a process traced from its start: every contention_begin is
    # ended by its contention_end on the same thread, and nothing is lost at these sizes.
    if tot["in_flight"] or tot["unmatched"]:
        problems.append(f"{tot['in_flight']} waits still in flight at the end and {tot['unmatched']} ends without "
                        f"a begin: every contention_begin of a traced thread is matched by its contention_end")
    lost = {k: tot[k] for k in ("perf_lost", "output_failed", "pending_full", "periods_full", "totals_full", "late")
            if tot[k]}
    if lost:
        problems.append(f"waits or periods lost or late: {lost}")
    if not samples:
        return problems + [f"the log has no sample of the {tot['waits']} waits BPF timed"]

    # The periods: on one grid, each (period, thread, lock, type) once, in order.
    off = [s for s in samples if s["start"] % PERIOD_NS]
    if off:
        problems.append(f"line {off[0]['line']}: period start {off[0]['start']} is not a multiple of the period")
    keys = [(s["start"], s["tid"], s["lock"], s["type"]) for s in samples]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        problems.append(f"(period {dup[0]}, tid {dup[1]}, lock {dup[2]:#x}, {dup[3]}) is in the log more than once")
    starts = [s["start"] for s in samples]
    if starts != sorted(starts):
        i = next(i for i in range(1, len(starts)) if starts[i] < starts[i - 1])
        problems.append(f"line {samples[i]['line']}: period {starts[i]} printed after period {starts[i - 1]}")
    for s in samples:
        if s["stackid"] >= 0 and (s["stackid"] not in stacks or stacks[s["stackid"]][0] > s["line"]):
            problems.append(f"line {s['line']}: stack {s['stackid']} is not printed before its first use")
            break
    if any(s["count"] <= 0 for s in samples):
        problems.append("a sample with no wait in it")

    # The traced process only, and all its waits.
    others = {s["pid"] for s in samples} - {rec["pid"]}
    if others:
        problems.append(f"samples of processes {sorted(others)}, not mmap_contend's pid {rec['pid']}")
    if sum(s["count"] for s in samples) != tot["waits"]:
        problems.append(f"the log's counts add up to {sum(s['count'] for s in samples)}; BPF timed {tot['waits']} waits")
    if sum(s["wait"] for s in samples) != tot["wait_ns"]:
        problems.append(f"the log's waits add up to {sum(s['wait'] for s in samples)} ns; BPF timed {tot['wait_ns']} ns")

    # Each (thread, lock, type) against its whole-run totals: the same waits, from the period its
    # first wait ended in to the period its last wait ended in.
    want = {}
    for t in tot["totals"]:
        k = (t["tid"], t["lock"], expected_type(t["flags"]))
        w = want.setdefault(k, dict(count=0, wait=0, first=t["first_end_ns"], last=t["last_end_ns"], flags=set()))
        w["count"] += t["count"]
        w["wait"] += t["wait_ns"]
        w["first"] = min(w["first"], t["first_end_ns"])
        w["last"] = max(w["last"], t["last_end_ns"])
        w["flags"].add(t["flags"])
    got = {}
    for s in samples:
        g = got.setdefault((s["tid"], s["lock"], s["type"]), dict(count=0, wait=0, starts=[]))
        g["count"] += s["count"]
        g["wait"] += s["wait"]
        g["starts"].append(s["start"])
    for k, w in sorted(want.items()):
        tid, lock, typ = k
        name = f"tid {tid}, lock {lock:#x} ({typ}, flags {'/'.join(flag_names(f) for f in sorted(w['flags']))})"
        g = got.get(k)
        if not g:
            types = sorted({s["type"] for s in samples if s["tid"] == tid and s["lock"] == lock})
            problems.append(f"{name}: BPF timed {w['count']} waits, the log has none of this type"
                            + (f" (it has {', '.join(types)})" if types else ""))
            continue
        if (g["count"], g["wait"]) != (w["count"], w["wait"]):
            problems.append(f"{name}: the log has {g['count']} waits, {g['wait']} ns; BPF timed {w['count']}, "
                            f"{w['wait']} ns")
        first, last = w["first"] - w["first"] % PERIOD_NS, w["last"] - w["last"] % PERIOD_NS
        if min(g["starts"]) != first or max(g["starts"]) != last:
            problems.append(f"{name}: its periods run from {min(g['starts'])} to {max(g['starts'])}; its first wait "
                            f"ended in the period starting {first}, its last in the one starting {last}")
    extra = sorted(set(got) - set(want))
    if extra:
        problems.append(f"tid {extra[0][0]}, lock {extra[0][1]:#x}: the log has {extra[0][2]} waits BPF never timed")

    # Periods are written while tracing, once they are over (a whole period after their end), and
    # not before: the samples written before the end are those the last tick could know complete.
    cur = tot["last_tick_ns"] - tot["last_tick_ns"] % PERIOD_NS
    complete = sum(1 for s in samples if s["start"] < cur - PERIOD_NS)
    surely = sum(1 for s in samples if s["start"] < cur - 2 * PERIOD_NS)
    early = tot["printed_while_tracing"]
    if early > complete:
        problems.append(f"{early} samples were written while tracing, but only {complete} of the log's periods were "
                        f"over (a whole period past their end) at the last flush: a period was written too early")
    elif early < surely:
        problems.append(f"only {early} samples were written while tracing; {surely} of the log's periods had been "
                        f"over for a whole period at the last flush (periods must be written as they complete)")

    # Types: the kind of lock each stack waits in, and the workload's own lock.
    workers = [s for s in samples if s["tid"] in rec["tids"]]
    for s in samples:
        if s["stackid"] < 0 or s["stackid"] not in stacks or not stacks[s["stackid"]][1]:
            continue
        leaf = stacks[s["stackid"]][1][0]
        for pattern, types in LEAVES:
            if pattern.search(leaf) and s["type"] not in types:
                problems.append(f"line {s['line']}: a wait in {leaf} is typed {s['type']}; it is a "
                                f"{' or '.join(sorted(types))} wait")
                break
        else:
            continue
        break
    writers = {}
    for s in workers:
        if s["type"] == "Semaphore:W" and s["stackid"] in stacks and stacks[s["stackid"]][1] and \
                LEAVES[0][0].search(stacks[s["stackid"]][1][0]):
            writers.setdefault(s["lock"], set()).add(s["tid"])
    if not any(len(t) >= 2 for t in writers.values()):
        problems.append("no rw_semaphore waited for as Semaphore:W by two workers in rwsem_down_write_slowpath: "
                        "mmap_contend's threads take their mmap_lock for writing in mmap, mprotect and munmap")
    return problems
