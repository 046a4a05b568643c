"""How labs/check grades the bpftrace lab: every exercise's script runs under bpftrace on a small
workload (bt-workload.c, or the lockstat lab's parprimes) started by bpftrace itself (-c, so the
probes are in place before the workload's first instruction and `cpid` is its pid), and its output
is compared with what the workload recorded. Intervals are shortened tenfold (interval:s:10 runs as
interval:ms:1000) so that the lab's 10-second exercises take a second."""

import os
import re
import shutil
import signal
import subprocess

import labkit

TITLE = "bpftrace warm-up"
KIND = "scripts"
BPFTRACE_TIMEOUT = 180


def _bin(name):
    path = os.path.join(labkit.build_dir(), "labs", "bin", name)
    if not os.path.exists(path):
        raise labkit.LabError(f"no {path}: build the project first (cmake --build build -j2)")
    return path


def shorten_intervals(text):
    """interval:s:N becomes interval:ms:N*100 (a tenth of the time)."""
    return re.sub(r"\binterval:s:(\d+)\b", lambda m: f"interval:ms:{int(m.group(1)) * 100}", text)


# ---- Reading bpftrace's output ----

_SCALE = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _value(label):
    m = re.fullmatch(r"(\d+)([KMGT]?)", label.strip())
    return int(m.group(1)) * _SCALE[m.group(2)]


def entries(out, name=None):
    """The printed map entries: a list of (map name, key text, body lines). A key may span lines
    (user stacks); a histogram's buckets are its body."""
    found, cur = [], None
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(@[A-Za-z0-9_]*)(\[|:)", line)
        if m:
            map_name = m.group(1)
            text = line[len(map_name):]
            if m.group(2) == "[":
                # The key ends at the "]:" that closes it, maybe lines later.
                while not re.search(r"\]: ?(\S.*)?$", text) and i + 1 < len(lines):
                    i += 1
                    text += "\n" + lines[i]
                key, _, rest = text[1:].rpartition("]:")
            else:
                key, rest = "", text[1:]
            cur = (map_name, key, [rest.strip()] if rest.strip() else [])
            found.append(cur)
        elif cur is not None and line.strip():
            cur[2].append(line.strip())
        elif not line.strip():
            cur = None
        i += 1
    return [e for e in found if name is None or e[0] == name]


def scalar(entry):
    """The number of a count/sum/min/max entry, or None."""
    body = entry[2]
    if body and re.fullmatch(r"-?\d+", body[0]):
        return int(body[0])
    return None


def buckets(entry):
    """[(low, high, count)] of a histogram entry (high exclusive)."""
    out = []
    for line in entry[2]:
        m = re.match(r"^\[([^,\]]+), ([^)]+)\)\s+(\d+)", line)
        if m:
            out.append((_value(m.group(1)), _value(m.group(2)), int(m.group(3))))
            continue
        m = re.match(r"^\[(\d+)\]\s+(\d+)", line)
        if m:
            v = int(m.group(1))
            out.append((v, v + 1, int(m.group(2))))
    return out


def parse_record(text):
    rec = {}
    for line in text.splitlines():
        w = line.split()
        if w:
            rec.setdefault(w[0], []).append(w[1:])
    return rec


def _count_of(out, comm):
    return [scalar(e) for e in entries(out) if e[1].strip() == comm and scalar(e) is not None]


# ---- Checks, one per exercise; each returns a list of problems ----

def _syscall_total(rec):
    return int(rec["getppid"][0][0])


def check_counts(out, rec, err):
    n = _syscall_total(rec)
    counts = _count_of(out, "bt-workload")
    if not counts:
        return [f"no count for bt-workload (expected a line like '@[bt-workload]: {n}...')"]
    if not n <= counts[-1] <= n + 400:
        return [f"@[bt-workload] is {counts[-1]}; the workload made {n} getppid calls and a few others"]
    return []


def check_periodic(out, rec, err):
    n = _syscall_total(rec)
    counts = _count_of(out, "bt-workload")
    if len(counts) < 3:
        return [f"the counts were printed {len(counts)} time(s): expected every interval, then at the end"]
    if counts != sorted(counts):
        return [f"the printed counts go down ({counts}): they should add up since the start"]
    if not n <= counts[-1] <= n + 400:
        return [f"the last count is {counts[-1]}; the workload made {n} getppid calls and a few others"]
    return []


def check_cleared(out, rec, err):
    n = _syscall_total(rec)
    counts = _count_of(out, "bt-workload")
    if len(counts) < 2:
        return [f"the counts were printed {len(counts)} time(s): expected every interval"]
    if not n <= sum(counts) <= n + 400:
        return [f"the printed counts {counts} add up to {sum(counts)}, not about {n}: each interval should "
                f"count only its own calls (clear the map after printing it)"]
    return []


def check_exit(out, rec, err):
    if rec:
        return ["the script did not end by itself: it ran until the workload (10 intervals long) finished"]
    counts = _count_of(out, "bt-workload")
    if not 2 <= len(counts) <= 4:
        return [f"the counts were printed {len(counts)} time(s) before the end: expected 3 intervals"]
    return []


def check_threads(out, rec, err):
    pid = int(rec["pid"][0][0])
    rows = {}
    for e in entries(out):
        parts = [p.strip() for p in e[1].split(",")]
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit() and scalar(e) is not None:
            rows[(int(parts[0]), int(parts[1]), parts[2])] = scalar(e)
    if not rows:
        return ["no entries keyed by pid, tid and comm (like '@[123, 124, bt-worker-1]: 100')"]
    problems = [f"an entry of pid {p} (tid {t}, {c}): only the workload (pid {pid}) was to be traced"
                for (p, t, c) in rows if p != pid]
    for tid, comm, n in rec.get("thread", []):
        got = rows.get((pid, int(tid), comm))
        if got is None:
            problems.append(f"no entry for pid {pid}, tid {tid}, {comm}")
        elif not int(n) <= got <= int(n) + 60:
            problems.append(f"tid {tid} ({comm}): {got} system calls counted; it made {n} getppid calls and a few others")
    return problems


def _sleeps(rec):
    return [(int(a), int(b)) for a, b in rec["sleep"]]


def check_printf(out, rec, err):
    sleeps = _sleeps(rec)
    values = []
    for line in out.splitlines():
        if line.startswith(("@", "[", "Attaching")) or not line.strip():
            continue
        m = re.search(r"(\d+)\D*$", line)
        if m:
            values.append(int(m.group(1)))
    if len(values) != len(sleeps):
        return [f"{len(values)} latencies printed; the workload slept {len(sleeps)} times "
                f"(one line per call, ending in the time in ns)"]
    for v, (asked, took) in zip(values, sleeps):
        if not asked <= v <= took:
            return [f"a latency of {v} ns: the workload asked for {asked} ns and its own clock saw {took} ns (units?)"]
    return []


def _hist_problems(entry, sleeps):
    b = buckets(entry)
    total = sum(c for _, _, c in b)
    if total != len(sleeps):
        return [f"the histogram counts {total} calls; the workload slept {len(sleeps)} times"]
    for lo, hi, c in b:
        inside = sum(1 for a, t in sleeps if lo <= a and t < hi)
        touching = sum(1 for a, t in sleeps if a < hi and t >= lo)
        if not inside <= c <= touching:
            return [f"the bucket [{lo}, {hi}) counts {c} calls; between {inside} and {touching} of the "
                    f"workload's sleeps can be in it (units? ns expected)"]
    return []


def _hists(out):
    return [e for e in entries(out) if buckets(e)]


def check_hist(out, rec, err):
    hists = _hists(out)
    if len(hists) != 1:
        return [f"{len(hists)} histograms printed, expected one"]
    return _hist_problems(hists[0], _sleeps(rec))


def check_minmax(out, rec, err):
    sleeps = _sleeps(rec)
    problems = check_hist(out, rec, err)
    for name, pick in (("@min", min), ("@max", max)):
        es = [e for e in entries(out) if e[0].startswith(name) and scalar(e) is not None]
        if len(es) != 1:
            problems.append(f"expected one {name}... map with a single value, found {len(es)}")
            continue
        v = scalar(es[0])
        lo, hi = pick(a for a, _ in sleeps), pick(t for _, t in sleeps)
        if not lo <= v <= hi:
            problems.append(f"{es[0][0]} is {v} ns; it must lie between {lo} and {hi} ns")
    return problems


def check_stacks(out, rec, err):
    # Each call lasts at least what it asked for and at most what the workload's clock saw: a call
    # is surely a new maximum when it asked for more than any earlier call can have lasted, and
    # cannot be one when it lasted less than an earlier call asked for.
    sleeps = _sleeps(rec)
    sure = sum(1 for i, (a, _) in enumerate(sleeps) if all(a > t for _, t in sleeps[:i]))
    maybe = sum(1 for i, (_, t) in enumerate(sleeps) if all(t > a for a, _ in sleeps[:i]))
    naps = [l for l in out.splitlines() if re.match(r"^\s+nap\+\d+", l)]
    if not sure <= len(naps) <= maybe:
        want = f"{sure}" if sure == maybe else f"{sure} to {maybe}"
        return [f"{len(naps)} user stacks through nap() printed; {want} of the workload's {len(sleeps)} "
                f"sleeps (of increasing length) were longer than every sleep before them"]
    return []


def check_profile(out, rec, err):
    mine = [e for e in entries(out) if e[1].split(",")[-1].strip() == "bt-workload" and scalar(e) is not None]
    root = [e for e in entries(out) if e[1].split(",")[-1].strip() == "bt-rootspin"]
    problems = []
    if root:
        problems.append("bt-rootspin (running as root) was counted: only threads of other users are to be")
    if sum(scalar(e) for e in mine) < 10:
        problems.append("bt-workload spun for 1.5 s as user nobody, but was sampled fewer than 10 times")
    return problems


def check_mmap_sizes(out, rec, err):
    got = {}
    for e in entries(out):
        if e[1].strip().isdigit() and scalar(e) is not None:
            got[int(e[1])] = scalar(e)
    if not got:
        return ["no entries keyed by size in KiB (like '@kib[4]: 100')"]
    problems = []
    for kib, n in rec["size"]:
        c = got.get(int(kib), 0)
        if not int(n) <= c <= int(n) + 10:
            problems.append(f"{c} mappings of {kib} KiB counted; the workload made {n}")
    return problems


def check_mmap_share(out, rec, err):
    m = re.search(r"total\D*(\d+)\D+shared\D*(\d+)\D+private\D*(\d+)", out)
    if not m:
        return ["no line like 'mmap calls: total T, shared S, private P' printed at the end"]
    total, shared, private = (int(x) for x in m.groups())
    want_s, want_p = int(rec["shared"][0][0]), int(rec["private"][0][0])
    problems = []
    if shared != want_s:
        problems.append(f"shared {shared}: the workload made {want_s} MAP_SHARED mappings")
    if not want_p <= private <= want_p + 30:
        problems.append(f"private {private}: the workload made {want_p} MAP_PRIVATE mappings (and the loader a few)")
    if total != shared + private:
        problems.append(f"total {total} is not shared + private ({shared + private})")
    return problems


def check_opens(out, rec, err):
    n, path = rec["open"][0]
    for e in entries(out):
        parts = [p.strip() for p in e[1].split(",", 1)]
        if parts == ["bt-workload", path]:
            return [] if scalar(e) == int(n) else [f"{path} opened {scalar(e)} times by bt-workload; it opened it {n} times"]
    return [f"no entry for bt-workload opening {path} (like '@[bt-workload, {path}]: {n}')"]


def _lock_calls(rec):
    return sum(int(t[4]) + int(t[7]) for t in rec.get("thread", []))


def check_pm(out, rec, err):
    # parprimes has exited when bpftrace prints its maps, so user frames come out as addresses.
    want = _lock_calls(rec)
    hists = [e for e in _hists(out) if e[1].rstrip().endswith("parprimes")]
    if len(hists) < 2:
        return [f"{len(hists)} histogram(s) keyed by a stack and parprimes: expected one per call stack "
                f"(parprimes takes its two mutexes from two places)"]
    if any(not re.search(r"^\s*(0x[0-9a-f]+|\S+\+\d+)\s*$", e[1], re.M) for e in hists):
        return ["a histogram's key has no stack frames: key by ustack and comm"]
    got = sum(c for e in hists for _, _, c in buckets(e))
    # The loader takes a mutex of its own a few times (thread start, exit).
    if not want <= got <= want + 20:
        return [f"the histograms count {got} calls; parprimes' threads took their mutexes {want} times "
                f"(and the loader a few)"]
    return []


def check_cond(out, rec, err):
    new, old = (int(x) for x in rec["timedwait"][0])
    got = sum(scalar(e) for e in entries(out) if scalar(e) is not None)
    if got != new + old:
        return [f"{got} calls counted; the workload called pthread_cond_timedwait {new} times through the "
                f"current version and {old} times through the old one"]
    return []


def check_create(out, rec, err):
    n = int(rec["create"][0][0])
    got = _count_of(out, "bt-workload")
    if got != [n]:
        return [f"pthread_create counted {got} for bt-workload; it created {n} threads"]
    return []


# exercise: (workload argv, check); "@W" is bt-workload, "@P" parprimes, "@T" the run's directory
EXERCISES = {
    1: (["@W", "syscalls", "2000", "1", "0"], check_counts),
    2: (["@W", "syscalls", "1000", "5", "600"], check_periodic),
    3: (["@W", "syscalls", "1000", "5", "600"], check_cleared),
    4: (["@W", "syscalls", "1000", "20", "500"], check_exit),
    5: (["@W", "threads", "300"], check_threads),
    6: (["@W", "sleeps", "5", "10", "20", "40"], check_printf),
    7: (["@W", "sleeps", "5", "10", "20", "40"], check_hist),
    8: (["@W", "sleeps", "5", "10", "20", "40"], check_minmax),
    9: (["@W", "sleeps", "5", "20", "80", "200"], check_stacks),
    10: ([shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "@W", "spin", "1500"], check_profile),
    11: (["@W", "mmap", "800"], check_mmap_sizes),
    12: (["@W", "mmap", "800"], check_mmap_share),
    13: (["@W", "open", "50", "@T/bt-opened-file"], check_opens),
    14: (["@P", "4", "20000"], check_pm),
    15: (["@P", "4", "20000"], check_pm),
    16: (["@W", "cond", "5", "3"], check_cond),
    17: (["@W", "create", "7"], check_create),
}


def run(n, script, tmp):
    """Runs exercise n's script; returns (exit code, stdout, stderr, the workload's record)."""
    argv, _ = EXERCISES[n]
    work = os.path.join(tmp, f"ex{n}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(tmp, 0o711)  # user nobody (exercise 10) reaches the workload copied below
    os.chmod(work, 0o755)
    workload = os.path.join(work, "bt-workload")
    shutil.copy2(_bin("bt-workload"), workload)
    subst = {"@W": workload, "@P": _bin("parprimes"), "@T": work}
    cmd = [subst.get(a, a.replace("@T", work)) for a in argv]
    with open(script) as fh:
        text = shorten_intervals(fh.read())
    path = os.path.join(work, os.path.basename(script))
    with open(path, "w") as fh:
        fh.write(text)
    record = os.path.join(work, "record")
    env = dict(os.environ, BT_RECORD=record, PARPRIMES_RECORD=record)
    if n == 10:
        del env["BT_RECORD"]  # user nobody cannot write here; that exercise needs no record
    spinner = None
    if n == 10:  # a root process that spins too: the script must leave it out
        root_spin = os.path.join(work, "bt-rootspin")
        shutil.copy2(_bin("bt-workload"), root_spin)
        spinner = subprocess.Popen([root_spin, "spin", "60000"])
    try:
        p = subprocess.Popen(["bpftrace", path, "-c", " ".join(cmd)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        try:
            out, err = p.communicate(timeout=BPFTRACE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return None, "", f"bpftrace did not finish within {BPFTRACE_TIMEOUT} s", ""
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()
    rec = open(record).read() if os.path.exists(record) else ""
    return p.returncode, out, err, rec


def check(n, result):
    code, out, err, record = result
    if code is None:
        return [err]
    _, fn = EXERCISES[n]
    if code != 0:
        lines = [l for l in err.splitlines() if "RLIMIT_MEMLOCK" not in l and l.strip()]
        return [f"bpftrace failed (exit {code}): {' '.join(lines[:2])[:300]}"]
    return fn(out, parse_record(record), err)
