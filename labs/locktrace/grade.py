"""How labs/check grades the locktrace lab: the program traces futex_scenarios (tests/workloads),
whose waiter thread sleeps on a futex word until its holder thread wakes it, round after round;
the CSV must agree with what both threads recorded."""

import csv
import io
import json
import os
import subprocess

import labkit

TITLE = "locktrace: blocked and sys time of futex calls"
KIND = "cpp"
PROGRAM = "lab-locktrace"
MAIN_CPP = "locktrace.cpp"
EMBEDS = [("kLabLocktraceHeaders", ["common.h", "locktrace.h"]), ("kLabLocktraceProgram", ["locktrace.bpf.c"])]
BPF_FILE = "locktrace.bpf.c"

# 4 rounds in which the holder keeps the word 20 ms after the waiter fell asleep on it.
ROUNDS, HOLD_MS = 4, 20


def workload():
    path = os.path.join(labkit.build_dir(), "bin", "futex_scenarios")
    if not os.path.exists(path):
        raise labkit.LabError(f"no {path}: build the project first (cmake --build build -j2)")
    return path


def run(program, bpf_text, tmp):
    record = os.path.join(tmp, "futex.record")
    if os.path.exists(record):
        os.unlink(record)
    cmd = [program] + (["--bpf-text", bpf_text] if bpf_text else []) + ["--", workload(), record, "block",
                                                                         str(ROUNDS), str(HOLD_MS)]
    try:
        # The workload starts when it reads a line: it is there before it runs.
        r = subprocess.run(cmd, input="go\n", capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "", "the program did not finish within 300 s", ""
    text = open(record).read() if os.path.exists(record) else ""
    return r.returncode, r.stdout, r.stderr, text


def check(result):
    code, out, err, record = result
    if code is None:
        return [err]
    if not record:
        return [f"futex_scenarios wrote no record (exit {code}): {err.strip()[-300:]}"]
    rec = json.loads(record)
    lines = [l for l in out.splitlines() if l.strip()]
    if not lines or not lines[0].startswith("pid,tid,addr,"):
        return ["no CSV header line (pid,tid,addr,...)"]
    try:
        rows = list(csv.DictReader(io.StringIO("\n".join(lines) + "\n")))
        for r in rows:
            for f in ("pid", "tid", "blocked_us", "sys_us", "max_blocked_us", "max_sys_us", "wait_count",
                      "blocked_count", "wake_count", "errors", "preempted"):
                r[f] = int(r[f])
    except (ValueError, KeyError, TypeError) as e:
        return [f"a CSV row does not parse: {e}"]
    addr = int(rec["addr"], 16)
    mine = [r for r in rows if r["tid"] == rec["waiter_tid"] and int(r["addr"], 16) == addr]
    holder = [r for r in rows if r["tid"] == rec["holder_tid"] and int(r["addr"], 16) == addr]
    problems = []
    if not mine:
        return [f"no row for the waiter (tid {rec['waiter_tid']}) on the word {rec['addr']}"]
    total = {f: sum(r[f] for r in mine) for f in ("wait_count", "blocked_count", "blocked_us", "sys_us", "errors")}
    if total["wait_count"] != rec["waits"]:
        problems.append(f"the waiter's wait_count is {total['wait_count']}; it made {rec['waits']} wait calls")
    if total["blocked_count"] != rec["woken_waits"]:
        problems.append(f"the waiter's blocked_count is {total['blocked_count']}; {rec['woken_waits']} of its "
                        f"waits slept until they were woken")
    if total["errors"] != rec["wait_errors"]:
        problems.append(f"the waiter's errors are {total['errors']}; {rec['wait_errors']} of its waits failed")
    # Each woken wait slept at least while the holder held on (HOLD_MS after seeing it asleep);
    # all the calls together lasted no longer than the waiter's own clock measured.
    floor_us = rec["woken_waits"] * (HOLD_MS * 1000 - 1)
    if total["blocked_us"] < floor_us:
        problems.append(f"the waiter's blocked_us is {total['blocked_us']}; it slept at least {floor_us} us")
    if total["blocked_us"] + total["sys_us"] > rec["wait_ns"] // 1000 + len(mine) * 2:
        problems.append(f"blocked_us + sys_us = {total['blocked_us'] + total['sys_us']}, more than the "
                        f"{rec['wait_ns'] // 1000} us the waiter measured around its calls (units?)")
    if max(r["max_blocked_us"] for r in mine) > rec["max_wait_ns"] // 1000 + 1:
        problems.append(f"max_blocked_us exceeds the longest wait the waiter measured ({rec['max_wait_ns'] // 1000} us)")
    if max(r["max_blocked_us"] for r in mine) < HOLD_MS * 1000 - 1:
        problems.append(f"max_blocked_us is below the {HOLD_MS} ms every round kept the waiter asleep")
    if not any("waiter_main" in r["stack"] for r in mine):
        problems.append(f"no stack of the waiter names waiter_main: {mine[0]['stack']}")
    wakes = sum(r["wake_count"] for r in holder)
    if wakes != rec["wakes"]:
        problems.append(f"the holder's wake_count is {wakes}; it made {rec['wakes']} wake calls")
    if any(r["wait_count"] for r in holder):
        problems.append("the holder made no wait call on the word, yet has a wait_count")
    return problems
