#!/usr/bin/python3
"""Analysis of mklockstat logs.

mklockstat samples kernel lock contention in fixed periods and prints one
line per (thread, lock, period) plus the kernel stacks those samples refer to:

    s,command,P<pid>_T<tid>,typename,lockaddr,starttime,diffsum,lockcount,stackid[,name]
    t,stackid,frame1,frame2,...

Lines starting with ``#`` and blank lines are ignored.  ``starttime`` is the
start of the period (ns, monotonic clock), ``diffsum`` the time the thread
waited for the lock in that period (ns), ``lockcount`` the number of contended
acquisitions and ``stackid`` the thread's first kernel stack on the lock
(negative: the stack was lost).

Conventions used throughout this module:

* a thread is identified by its tid (the kernel task id);
* a lock is identified by its address; functions taking ``lock`` accept the
  address as an int, as a ``"0x..."`` string, or the lock's symbol name;
* "average wait" is always wait per acquisition: sum(wait_ns) / sum(count),
  taken as 0 when there were no acquisitions;
* the read and write sides of a read-write lock (``type`` ``Semaphore:R`` and
  ``Semaphore:W``, ``RWLock:R`` and ``RWLock:W``) are kept apart: every table
  has one row per (lock, type) and every plot one series per type, because
  readers and writers of one rw_semaphore wait for different reasons;
* "most contended" means most total wait, as ``perf lock contention`` ranks
  locks; the other rankings (distinct threads, average wait, worst period)
  have functions of their own;
* all tables keep times in ns; ``t_ms`` is the period start in ms since the
  first period of the log.  Plots show time in ms and waits in µs.

Plots are drawn on plain matplotlib ``Figure`` objects (rendered by Agg), so
importing this module does not change the pyplot backend of the caller.

Command line: ``python3 mklockstat_analysis.py LOG [--png-dir DIR]``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "Log", "load_log", "infer_period_ns", "most_contended_locks", "locks_by_threads",
    "lock_timeline",
    "lock_threads", "worst_locks_by_avg_wait", "worst_locks_by_worst_period",
    "worst_wait_per_period", "plot_worst_wait_per_period", "plot_lock_avg_wait",
    "plot_lock_timeline", "main",
]

SAMPLE_COLUMNS = ["command", "pid", "tid", "type", "base_type", "lock", "lockaddr",
                  "start_ns", "wait_ns", "count", "stackid", "name"]
_INT_COLUMNS = {"pid": "int64", "tid": "int64", "lock": "uint64", "start_ns": "int64",
                "wait_ns": "int64", "count": "int64", "stackid": "int64"}
_THREAD_RE = re.compile(r"P([0-9]+)_T([0-9]+)\Z")
_ADDR_RE = re.compile(r"0[xX][0-9a-fA-F]{1,16}\Z")
_INT_RE = re.compile(r"-?[0-9]+\Z")
NS_PER_MS = 1_000_000
NS_PER_US = 1_000


# --------------------------------------------------------------------------
# Loading

@dataclass
class Log:
    """A parsed mklockstat log.

    ``samples`` has one row per sample line (columns ``SAMPLE_COLUMNS``),
    ``stacks`` maps stack id to its frames (leaf first) and ``period_ns`` is
    the sampling period (None if the log has a single period).
    """
    samples: pd.DataFrame
    stacks: dict[int, list[str]]
    period_ns: int | None

    @property
    def first_ns(self) -> int:
        """Start of the first period in the log (0 for an empty log)."""
        return int(self.samples["start_ns"].min()) if len(self.samples) else 0

    def stack(self, stackid: int) -> list[str]:
        """Frames of a stack; empty for a lost (negative) or unknown stack id."""
        return list(self.stacks.get(int(stackid), []))

    def t_ms(self, start_ns):
        """Convert period start(s) in ns to ms since the first period."""
        return (start_ns - self.first_ns) / NS_PER_MS


def _int(text: str, what: str, minimum: int | None = None) -> int:
    if not _INT_RE.match(text):
        raise ValueError(f"{what} is not an integer: {text!r}")
    value = int(text)
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}: {text!r}")
    return value


def _parse_sample(fields: list[str]) -> tuple:
    if len(fields) not in (9, 10):
        raise ValueError(f"sample line has {len(fields)} fields, expected 9 or 10")
    _, command, thread, typename, lockaddr, start, wait, count, stackid = fields[:9]
    match = _THREAD_RE.match(thread)
    if not match:
        raise ValueError(f"thread field is not P<pid>_T<tid>: {thread!r}")
    if not typename:
        raise ValueError("empty lock type")
    if not _ADDR_RE.match(lockaddr):
        raise ValueError(f"lock address is not hex: {lockaddr!r}")
    return (command, int(match[1]), int(match[2]), typename, typename.split(":")[0],
            int(lockaddr, 16), lockaddr, _int(start, "starttime", 0),
            _int(wait, "diffsum", 0), _int(count, "lockcount", 0),
            _int(stackid, "stackid"), fields[9] if len(fields) == 10 else "")


def infer_period_ns(starts) -> int | None:
    """GCD of the differences between distinct start times (None if < 2)."""
    distinct = sorted({int(s) for s in starts})
    return math.gcd(*(b - a for a, b in zip(distinct, distinct[1:]))) or None


def load_log(source, period_ns: int | None = None) -> Log:
    """Parse a log from a path or an open (text or binary) file.

    The period is inferred from the start times unless ``period_ns`` is given.
    Raises ValueError naming the line number for a malformed line.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8", errors="replace") as file:
            return load_log(file, period_ns)
    where = getattr(source, "name", "<log>")
    rows, stacks = [], {}
    for lineno, line in enumerate(source, 1):
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(",")
        try:
            if fields[0] == "s":
                rows.append(_parse_sample(fields))
            elif fields[0] == "t":
                if len(fields) < 2:
                    raise ValueError("stack line without stack id")
                stacks[_int(fields[1], "stack id", 0)] = fields[2:]
            else:
                raise ValueError(f"unknown record type {fields[0]!r}")
        except ValueError as error:
            raise ValueError(f"{where}: line {lineno}: {error}") from None

    samples = pd.DataFrame(rows, columns=SAMPLE_COLUMNS).astype(_INT_COLUMNS)
    starts = samples["start_ns"]
    if period_ns is None:
        period_ns = infer_period_ns(starts)
    elif period_ns <= 0 or ((starts - starts.min()) % period_ns != 0).any():
        raise ValueError(f"{where}: start times are not spaced by multiples of "
                         f"period_ns={period_ns}")
    return Log(samples, stacks, period_ns)


# --------------------------------------------------------------------------
# Tables

def _avg(wait, count):
    """wait / count, 0 where count is 0."""
    return (wait / count.where(count > 0)).fillna(0.0)


def _top(frame: pd.DataFrame, n: int | None) -> pd.DataFrame:
    return (frame if n is None else frame.head(n)).reset_index(drop=True)


def _join_unique(values) -> str:
    return "/".join(dict.fromkeys(values))


def _first_nonempty(values) -> str:
    return next((v for v in values if v), "")


def _lock_key(log: Log, lock) -> int:
    if isinstance(lock, str):
        if lock[:2].lower() == "0x":
            return int(lock, 16)
        found = log.samples.loc[log.samples["name"] == lock, "lock"].unique()
        if len(found) != 1:
            raise KeyError(f"no unique lock named {lock!r} in log")
        return int(found[0])
    return int(lock)


def _lock_samples(log: Log, lock) -> pd.DataFrame:
    key = _lock_key(log, lock)
    samples = log.samples[log.samples["lock"] == key]
    if samples.empty:
        raise KeyError(f"lock {key:#x} not in log")
    return samples


def _lock_label(log: Log, lock) -> str:
    samples = _lock_samples(log, lock)
    name = _first_nonempty(samples["name"])
    label = f"{samples['lockaddr'].iloc[0]} {_join_unique(samples['base_type'])}"
    return f"{label} ({name})" if name else label


def _lock_summary(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per (lock, type): identity, distinct threads, total wait and count."""
    out = samples.groupby(["lock", "type"], sort=True).agg(
        lockaddr=("lockaddr", "first"), name=("name", _first_nonempty),
        threads=("tid", "nunique"), wait_ns=("wait_ns", "sum"),
        count=("count", "sum")).reset_index()
    out["avg_wait_ns"] = _avg(out["wait_ns"], out["count"])
    return out


def _lock_periods(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per (lock, type, period) with threads, wait, count and average wait."""
    out = samples.groupby(["lock", "type", "start_ns"], sort=True).agg(
        threads=("tid", "nunique"), wait_ns=("wait_ns", "sum"),
        count=("count", "sum")).reset_index()
    out["avg_wait_ns"] = _avg(out["wait_ns"], out["count"])
    return out


def _all_periods(log: Log, first: int, last: int) -> pd.DataFrame:
    step = log.period_ns or 1
    return pd.DataFrame({"start_ns": range(first, last + 1, step)}, dtype="int64")


_RANKED = ["lock", "lockaddr", "name", "type", "threads", "wait_ns", "count", "avg_wait_ns"]


def most_contended_locks(log: Log, n: int | None = 10) -> pd.DataFrame:
    """Locks ranked by total wait, one row per (lock, type): the lock that
    cost its waiters the most time comes first, as in ``perf lock contention``.

    Columns: lock, lockaddr, name, type, threads, wait_ns, count, avg_wait_ns.
    """
    summary = _lock_summary(log.samples).sort_values(
        ["wait_ns", "lock", "type"], ascending=[False, True, True])
    return _top(summary, n)[_RANKED]


def locks_by_threads(log: Log, n: int | None = 10) -> pd.DataFrame:
    """Locks ranked by how many distinct threads waited for them (then total
    wait), one row per (lock, type).  A lock every thread touches briefly (a
    per-CPU spinlock) ranks high here however little time it cost.

    Columns: lock, lockaddr, name, type, threads, wait_ns, count, avg_wait_ns.
    """
    summary = _lock_summary(log.samples).sort_values(
        ["threads", "wait_ns", "lock", "type"], ascending=[False, False, True, True])
    return _top(summary, n)[_RANKED]


def lock_timeline(log: Log, lock) -> pd.DataFrame:
    """Per type and period of one lock: distinct threads, total wait, count,
    average wait.  A read-write lock has one block of rows per side.

    Every period between the lock's first and last sampled period is listed
    for each type; periods without samples have zeros.  Columns: start_ns,
    t_ms, type, threads, wait_ns, count, avg_wait_ns (by type, then period).
    """
    per = _lock_periods(_lock_samples(log, lock)).drop(columns="lock")
    frame = _all_periods(log, int(per["start_ns"].min()), int(per["start_ns"].max()))
    blocks = []
    for typename, side in per.groupby("type", sort=True):
        block = frame.merge(side.drop(columns="type"), on="start_ns", how="left").fillna(0)
        block.insert(1, "type", typename)
        blocks.append(block)
    out = pd.concat(blocks, ignore_index=True)
    out = out.astype({"threads": "int64", "wait_ns": "int64", "count": "int64"})
    out.insert(1, "t_ms", log.t_ms(out["start_ns"]))
    return out


def lock_threads(log: Log, lock) -> pd.DataFrame:
    """Threads that took a lock, one row per thread and type (a thread that
    both read and wrote a read-write lock has two), most total wait first.

    Columns: pid, tid, command, type, wait_ns, count, stackid, stack.  ``stack``
    is the frame list of the thread's first known stack on the lock (on that
    side), or an empty list if all its stacks were lost (``stackid`` then is
    negative).
    """
    rows = []
    samples = _lock_samples(log, lock).sort_values("start_ns", kind="stable")
    for (tid, _), group in samples.groupby(["tid", "type"], sort=False):
        known = [int(s) for s in group["stackid"] if s in log.stacks]
        stackid = known[0] if known else int(group["stackid"].iloc[0])
        rows.append({"pid": int(group["pid"].iloc[0]), "tid": int(tid),
                     "command": group["command"].iloc[0],
                     "type": _join_unique(group["type"]),
                     "wait_ns": int(group["wait_ns"].sum()),
                     "count": int(group["count"].sum()),
                     "stackid": stackid, "stack": log.stack(stackid)})
    out = pd.DataFrame(rows).sort_values(["wait_ns", "tid", "type"], ascending=[False, True, True])
    return out.reset_index(drop=True)


def worst_locks_by_avg_wait(log: Log, min_threads: int = 2,
                            n: int | None = 10) -> pd.DataFrame:
    """(lock, type) pairs with >= min_threads distinct threads, by whole-log
    average wait.

    ``avg_wait_ns`` = sum(wait_ns) / sum(count) over the whole log.
    Columns: lock, lockaddr, name, type, threads, wait_ns, count, avg_wait_ns.
    """
    summary = _lock_summary(log.samples)
    summary = summary[summary["threads"] >= min_threads].sort_values(
        ["avg_wait_ns", "lock", "type"], ascending=[False, True, True])
    return _top(summary, n)[_RANKED]


def worst_locks_by_worst_period(log: Log, n: int | None = 10) -> pd.DataFrame:
    """(lock, type) pairs ranked by the average wait of their worst period.

    Columns: lock, lockaddr, name, type, start_ns, t_ms (of the worst period),
    threads, wait_ns, count, avg_wait_ns (all in that period).
    """
    worst = _lock_periods(log.samples).sort_values(
        ["avg_wait_ns", "start_ns", "lock", "type"], ascending=[False, True, True, True])
    worst = worst.drop_duplicates(["lock", "type"])
    ident = _lock_summary(log.samples)[["lock", "lockaddr", "name", "type"]]
    out = ident.merge(worst, on=["lock", "type"]).sort_values(
        ["avg_wait_ns", "lock", "type"], ascending=[False, True, True])
    out.insert(5, "t_ms", log.t_ms(out["start_ns"]))
    return _top(out, n)


def worst_wait_per_period(log: Log) -> pd.DataFrame:
    """Per period of the log, the (lock, type) with the highest average wait.

    Periods without any sample are listed with avg_wait_ns 0 and lock <NA>.
    Columns: start_ns, t_ms, lock, lockaddr, name, type, avg_wait_ns, wait_ns,
    count.
    """
    columns = ["start_ns", "t_ms", "lock", "lockaddr", "name", "type", "avg_wait_ns",
               "wait_ns", "count"]
    if log.samples.empty:
        return pd.DataFrame(columns=columns)
    worst = _lock_periods(log.samples).sort_values(
        ["avg_wait_ns", "lock", "type"], ascending=[False, True, True]).drop_duplicates("start_ns")
    worst = worst.merge(_lock_summary(log.samples)[["lock", "type", "lockaddr", "name"]],
                        on=["lock", "type"])
    worst["lock"] = worst["lock"].astype("UInt64")  # keeps 64-bit addresses exact next to <NA>
    frame = _all_periods(log, log.first_ns, int(log.samples["start_ns"].max()))
    out = frame.merge(worst, on="start_ns", how="left")
    out = out.fillna({"lockaddr": "", "name": "", "type": "", "avg_wait_ns": 0.0, "wait_ns": 0,
                      "count": 0})
    out = out.astype({"wait_ns": "int64", "count": "int64"})
    out["t_ms"] = log.t_ms(out["start_ns"])
    return out[columns]


# --------------------------------------------------------------------------
# Plots (each saves a PNG and returns the Figure)

def _time_label(log: Log) -> str:
    period = f", period {log.period_ns / NS_PER_MS:g} ms" if log.period_ns else ""
    return f"time since first period [ms]{period}"


def _save(fig: Figure, png) -> Figure:
    fig.savefig(png, dpi=100)
    return fig


def plot_worst_wait_per_period(log: Log, png) -> Figure:
    """Plot, per period, the worst average wait per acquisition (µs)."""
    worst = worst_wait_per_period(log)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(worst["t_ms"], worst["avg_wait_ns"] / NS_PER_US, marker=".")
    ax.set_xlabel(_time_label(log))
    ax.set_ylabel("worst avg wait per acquisition [µs]")
    ax.set_title("Worst lock: average wait per acquisition, per period")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    return _save(fig, png)


def plot_lock_avg_wait(log: Log, lock, png) -> Figure:
    """Plot one lock's average wait per acquisition (µs) per period, one line
    per type (the read and write sides of a read-write lock apart)."""
    timeline = lock_timeline(log, lock)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    sides = list(timeline.groupby("type", sort=True))
    for typename, side in sides:
        ax.plot(side["t_ms"], side["avg_wait_ns"] / NS_PER_US, marker=".", label=typename)
    if len(sides) > 1:
        ax.legend()
    ax.set_xlabel(_time_label(log))
    ax.set_ylabel("avg wait per acquisition [µs]")
    ax.set_title(f"Average wait per acquisition: {_lock_label(log, lock)}")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    return _save(fig, png)


def plot_lock_timeline(log: Log, lock, png) -> Figure:
    """Plot one lock's threads, total wait (µs) and acquisitions per period;
    a read-write lock's sides are bars of their own, side by side."""
    timeline = lock_timeline(log, lock)
    sides = list(timeline.groupby("type", sort=True))
    width = 0.8 * (log.period_ns or NS_PER_MS) / NS_PER_MS / len(sides)
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    panels = [("threads", 1, "threads [count]"),
              ("wait_ns", NS_PER_US, "total wait [µs]"),
              ("count", 1, "acquisitions [count]")]
    for ax, (column, scale, label) in zip(axes, panels):
        for i, (typename, side) in enumerate(sides):
            ax.bar(side["t_ms"] + i * width, side[column] / scale, width=width, align="edge",
                   label=typename)
        if len(sides) > 1:
            ax.legend()
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)
        if scale == 1:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel(_time_label(log))
    axes[0].set_title(f"Contention timeline: {_lock_label(log, lock)}")
    return _save(fig, png)


# --------------------------------------------------------------------------
# Command line

def _print_table(title: str, frame: pd.DataFrame) -> None:
    print(f"\n== {title} ==")
    if "lockaddr" in frame:  # the hex address says the same as the integer key
        frame = frame.drop(columns="lock")
    print(frame.to_string(index=False, max_rows=40, float_format=lambda v: f"{v:.1f}")
          if len(frame) else "(none)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Summarise an mklockstat log.")
    parser.add_argument("log", help="mklockstat output file")
    parser.add_argument("--png-dir", default=".", help="where to write PNGs (default: .)")
    parser.add_argument("--period-ns", type=int, help="sampling period (default: inferred)")
    parser.add_argument("--top", type=int, default=10, help="rows per ranking (default: 10)")
    parser.add_argument("--min-threads", type=int, default=2,
                        help="min distinct threads for the average-wait ranking (default: 2)")
    args = parser.parse_args(argv)
    try:
        log = load_log(args.log, args.period_ns)
    except (OSError, ValueError) as error:
        print(f"mklockstat_analysis: error: {error}", file=sys.stderr)
        return 1

    samples = log.samples
    period = f"{log.period_ns / NS_PER_MS:g} ms" if log.period_ns else "unknown"
    print(f"{args.log}: {len(samples)} samples, {samples['lock'].nunique()} locks, "
          f"{samples['tid'].nunique()} threads, {samples['start_ns'].nunique()} "
          f"sampled periods, period {period}")
    if samples.empty:
        return 0

    contended = most_contended_locks(log, args.top)
    top = int(contended["lock"].iloc[0])
    _print_table("Most contended locks (total wait)", contended)
    _print_table("Locks by distinct threads", locks_by_threads(log, args.top))
    _print_table(f"Timeline of lock {top:#x}", lock_timeline(log, top))
    threads = lock_threads(log, top)
    _print_table(f"Threads on lock {top:#x}", threads.drop(columns="stack"))
    for stackid, group in threads.groupby("stackid", sort=False):
        tids = ", ".join(str(t) for t in group["tid"])
        frames = group["stack"].iloc[0]
        print(f"\nstack {stackid} (tids {tids}):")
        print("\n".join(f"    {f}" for f in frames) if frames else "    (lost)")
    _print_table(f"Worst locks by average wait per acquisition "
                 f"(>= {args.min_threads} threads)",
                 worst_locks_by_avg_wait(log, args.min_threads, args.top))
    _print_table("Worst locks by worst period", worst_locks_by_worst_period(log, args.top))
    _print_table("Worst average wait per period", worst_wait_per_period(log))

    png_dir = Path(args.png_dir)
    png_dir.mkdir(parents=True, exist_ok=True)
    pngs = [png_dir / "worst_wait_per_period.png",
            png_dir / f"lock_{top:x}_avg_wait.png", png_dir / f"lock_{top:x}_timeline.png"]
    plot_worst_wait_per_period(log, pngs[0])
    plot_lock_avg_wait(log, top, pngs[1])
    plot_lock_timeline(log, top, pngs[2])
    print("\nwrote " + ", ".join(str(p) for p in pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
