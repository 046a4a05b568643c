"""How labs/check grades the lockstat lab: the program runs on parprimes, whose own record (what
each thread did, and for how long) the report must agree with."""

import os
import re
import subprocess

import labkit

TITLE = "lockstat: contention stats and stacks"
KIND = "cpp"
PROGRAM = "lab-lockstat"
MAIN_CPP = "lockstat.cpp"
EMBEDS = [("kLabLockstatHeaders", ["common.h", "lockstat.h"]), ("kLabLockstatProgram", ["lockstat.bpf.c"])]
BPF_FILE = "lockstat.bpf.c"

# 4 threads below 30000: 3245 primes, so 3245 acquisitions of the counting mutex (about 0.1 s of
# probes here) and one of the printing mutex per thread.
THREADS, MAX = 4, 30000

_ROW = re.compile(r"^\s*(\d+)\s+#(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$")
_INIT = re.compile(r"^#(\d+) mutex (0x[0-9a-f]+) initialized by tid (\d+) at:$")
_HIST = re.compile(r"^hold times of #(\d+) in tid (\d+):$")
_BUCKET = re.compile(r"^\s*(\d+) -> (\d+)\s*: (\d+)")


def workload():
    path = os.path.join(labkit.build_dir(), "labs", "bin", "parprimes")
    if not os.path.exists(path):
        raise labkit.LabError(f"no {path}: build the project first (cmake --build build -j2)")
    return path


def run(program, bpf_text, tmp):
    """Runs the lab's program on parprimes; returns (exit code, stdout, stderr, record text)."""
    record = os.path.join(tmp, "parprimes.record")
    if os.path.exists(record):
        os.unlink(record)
    cmd = [program] + (["--bpf-text", bpf_text] if bpf_text else []) + ["--", workload(), str(THREADS), str(MAX)]
    env = dict(os.environ, PARPRIMES_RECORD=record)
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "", "the program did not finish within 300 s", ""
    text = open(record).read() if os.path.exists(record) else ""
    return r.returncode, r.stdout, r.stderr, text


def parse_record(text):
    locks, threads = {}, []
    for line in text.splitlines():
        w = line.split()
        if len(w) == 2:
            locks[w[0]] = int(w[1], 16)
        elif w and w[0] == "thread":
            threads.append({"tid": int(w[3]), "count_lock": (int(w[5]), int(w[6])), "print_lock": (int(w[8]), int(w[9]))})
    return locks, threads


def parse_report(out):
    rows, inits, hists = [], {}, {}
    init_frames = None
    hist = None
    for line in out.splitlines():
        m = _INIT.match(line)
        if m:
            init_frames = []
            inits[int(m.group(1))] = (int(m.group(2), 16), init_frames)
            hist = None
            continue
        m = _HIST.match(line)
        if m:
            hist = hists.setdefault((int(m.group(1)), int(m.group(2))), [0])
            init_frames = None
            continue
        m = _BUCKET.match(line)
        if m and hist is not None:
            hist[0] += int(m.group(3))
            continue
        if init_frames is not None and line.startswith("    "):
            init_frames.append(line.strip())
            continue
        m = _ROW.match(line)
        if m:
            rows.append({"tid": int(m.group(1)), "label": int(m.group(2)), "wait_us": int(m.group(3)),
                         "hold_us": int(m.group(4)), "enters": int(m.group(5)), "stack": m.group(6)})
    return rows, inits, {k: v[0] for k, v in hists.items()}


def check(result):
    """Problems with one run (empty: it passes)."""
    code, out, err, record = result
    if code is None:
        return [err]
    locks, threads = parse_record(record)
    if len(threads) != THREADS or set(locks) != {"count_lock", "print_lock"}:
        return [f"parprimes wrote no complete record (exit {code}): {err.strip()[-300:]}"]
    rows, inits, hists = parse_report(out)
    problems = []
    label = {}
    for name, addr in locks.items():
        found = [n for n, (a, frames) in inits.items() if a == addr]
        if not found:
            problems.append(f"no init stack for {name} at {addr:#x} ('#N mutex 0x... initialized by tid T at:')")
            continue
        label[name] = found[0]
        frames = inits[found[0]][1]
        if not any(f.startswith("main+") for f in frames):
            problems.append(f"the init stack of {name} (#{found[0]}) does not reach main: {frames}")
    if problems:
        return problems
    for t in threads:
        for name in ("count_lock", "print_lock"):
            n, span_ns = t[name]
            mine = [r for r in rows if r["tid"] == t["tid"] and r["label"] == label[name]]
            enters = sum(r["enters"] for r in mine)
            who = f"tid {t['tid']}, {name} (#{label[name]})"
            if enters != n:
                problems.append(f"{who}: {enters} enters, parprimes took it {n} times")
                continue
            wait = sum(r["wait_us"] for r in mine)
            hold = sum(r["hold_us"] for r in mine)
            # Both intervals lie inside the span parprimes measured around lock..unlock.
            if wait + hold > span_ns / 1000 + len(mine):
                problems.append(f"{who}: wait {wait} us + hold {hold} us exceed the {span_ns // 1000} us "
                                f"parprimes spent from its lock calls to its unlocks (units?)")
            if name == "count_lock":
                if wait == 0 or hold == 0:
                    problems.append(f"{who}: wait {wait} us, hold {hold} us over {n} acquisitions: neither can be 0")
                if not all("primes_thread" in r["stack"] for r in mine):
                    problems.append(f"{who}: a stack does not name primes_thread: {mine[0]['stack']}")
            h = hists.get((label[name], t["tid"]), 0)
            if h != n:
                problems.append(f"{who}: the hold-time histogram counts {h} holds, parprimes made {n}")
    return problems
