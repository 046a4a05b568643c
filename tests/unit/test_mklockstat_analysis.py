#!/usr/bin/python3
"""Unit tests for src/mklockstat/analysis/mklockstat_analysis.py.

Run: /usr/bin/python3 -m unittest discover -s tests/unit -p 'test_mklockstat_analysis.py'
  or /usr/bin/python3 tests/unit/test_mklockstat_analysis.py
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ANALYSIS_DIR = Path(__file__).resolve().parents[2] / "src" / "mklockstat" / "analysis"
sys.path.insert(0, str(ANALYSIS_DIR))

import mklockstat_analysis as mla  # noqa: E402

P = 50_000_000                       # 50 ms period
T0 = 20_000 * P                      # first period start (a multiple of P)
A = 0xFFFF9E1C4A2B3C40               # Mutex, 3 threads, periods 0..3 (1 is a gap)
B = 0xFFFFFFFF8A000100               # RWLock, 1 thread, lost stack, periods 1 and 4
C = 0xFFFF9E1C00001000               # Spinlock, 2 threads, periods 0 and 4


def t(k):
    return T0 + k * P


# Known answers (wait_ns / count):
#   A: p0 tid101 3000/3, tid102 1000/1 | p2 tid101 2000/2, tid201 10000/2 | p3 tid102 6000/3
#      total 22000/11 -> avg 2000; per period 1000, (gap), 3000, 2000
#   B: p1 tid301 50000/1 | p4 tid301 4500/9 -> total 54500/10 -> avg 5450
#   C: p0 tid101 8000/2 | p4 tid301 2000/2 -> total 10000/4 -> avg 2500
LOG = f"""\
# mklockstat header: type,command,thread,typename,lockaddr,starttime,diffsum,lockcount,stackid,name
t,1,mutex_lock+0x1d,do_work+0x40,ret_from_fork+0x22
s,worker,P100_T101,Mutex,{A:#x},{t(0)},3000,3,1,test_mutex_a
t,2,mutex_lock+0x1d,flush_work+0x10
s,worker,P100_T102,Mutex,{A:#x},{t(0)},1000,1,2,test_mutex_a
t,4,_raw_spin_lock+0x5,tick_sched+0x31
s,worker,P100_T101,Spinlock,{C:#x},{t(0)},8000,2,4,

s,kworker/0:1,P300_T301,RWLock:W,{B:#x},{t(1)},50000,1,-3,
s,worker,P100_T101,Mutex,{A:#x},{t(2)},2000,2,1,test_mutex_a
t,5,mutex_lock+0x1d,db_commit+0x99
s,db,P200_T201,Mutex,{A:#x},{t(2)},10000,2,5,test_mutex_a
s,worker,P100_T102,Mutex,{A:#x},{t(3)},6000,3,2,test_mutex_a
s,kworker/0:1,P300_T301,RWLock:R,{B:#x},{t(4)},4500,9,-7,
s,kworker/0:1,P300_T301,Spinlock,{C:#x},{t(4)},2000,2,9,
"""


def load(text=LOG, **kwargs):
    return mla.load_log(io.StringIO(text), **kwargs)


class TestLoad(unittest.TestCase):
    def test_samples_columns_and_values(self):
        log = load()
        self.assertEqual(list(log.samples.columns), mla.SAMPLE_COLUMNS)
        self.assertEqual(len(log.samples), 9)
        first = log.samples.iloc[0]
        self.assertEqual((first["command"], first["pid"], first["tid"]), ("worker", 100, 101))
        self.assertEqual(int(first["lock"]), A)          # above 2**63: stored as uint64
        self.assertEqual(first["lockaddr"], f"{A:#x}")
        self.assertEqual(first["name"], "test_mutex_a")
        b_rows = log.samples[log.samples["lock"] == B]
        self.assertEqual(list(b_rows["type"]), ["RWLock:W", "RWLock:R"])
        self.assertEqual(list(b_rows["base_type"]), ["RWLock", "RWLock"])
        self.assertEqual(list(b_rows["name"]), ["", ""])

    def test_nine_field_samples_have_empty_name(self):
        log = load(f"s,x,P1_T2,Semaphore:R,0x10,{t(0)},5,1,-1\n")
        self.assertEqual(log.samples["name"].iloc[0], "")
        self.assertEqual(log.samples["base_type"].iloc[0], "Semaphore")

    def test_load_from_path(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.log"
            path.write_text(LOG)
            self.assertEqual(len(mla.load_log(path).samples), 9)
            self.assertEqual(len(mla.load_log(str(path)).samples), 9)

    def test_stacks(self):
        log = load()
        self.assertEqual(log.stacks[1], ["mutex_lock+0x1d", "do_work+0x40", "ret_from_fork+0x22"])
        self.assertEqual(sorted(log.stacks), [1, 2, 4, 5])
        self.assertEqual(log.stack(-3), [])               # lost
        self.assertEqual(log.stack(9), [])                # never printed

    def test_period_inferred(self):
        self.assertEqual(load().period_ns, P)

    def test_period_is_gcd_of_uneven_gaps(self):
        text = "".join(f"s,x,P1_T2,Mutex,0x10,{t(k)},1,1,-1\n" for k in (0, 2, 5))
        self.assertEqual(load(text).period_ns, P)         # gcd(100 ms, 150 ms)

    def test_single_period_has_no_period(self):
        self.assertIsNone(load(f"s,x,P1_T2,Mutex,0x10,{t(0)},1,1,-1\n").period_ns)

    def test_period_argument(self):
        self.assertEqual(load(period_ns=P // 2).period_ns, P // 2)
        with self.assertRaises(ValueError):
            load(period_ns=3 * P)

    def test_empty_log(self):
        log = load("# only a header\n\n")
        self.assertTrue(log.samples.empty)
        self.assertEqual(list(log.samples.columns), mla.SAMPLE_COLUMNS)
        self.assertEqual(len(mla.most_contended_locks(log)), 0)
        self.assertEqual(len(mla.worst_wait_per_period(log)), 0)

    def test_malformed_line_reports_line_number(self):
        bad_lines = {
            "wrong field count": "s,x,P1_T2,Mutex,0x10,0,1,1",
            "bad thread": "s,x,P1-T2,Mutex,0x10,0,1,1,-1",
            "bad address": "s,x,P1_T2,Mutex,lock,0,1,1,-1",
            "bad start": "s,x,P1_T2,Mutex,0x10,12ms,1,1,-1",
            "negative wait": "s,x,P1_T2,Mutex,0x10,0,-1,1,-1",
            "bad stack id": "t,abc,frame+0x1",
            "unknown record": "x,1,2,3",
        }
        for what, bad in bad_lines.items():
            with self.subTest(what):
                text = f"# header\ns,x,P1_T2,Mutex,0x10,0,1,1,-1\n{bad}\n"
                with self.assertRaisesRegex(ValueError, r"line 3\b"):
                    load(text)


class TestTables(unittest.TestCase):
    def setUp(self):
        self.log = load()

    def test_most_contended_ranks_by_total_wait_with_sides_apart(self):
        top = mla.most_contended_locks(self.log)
        self.assertEqual([int(v) for v in top["lock"]], [B, A, C, B])
        self.assertEqual(list(top["type"]), ["RWLock:W", "Mutex", "Spinlock", "RWLock:R"])
        self.assertEqual(list(top["wait_ns"]), [50000, 22000, 10000, 4500])
        self.assertEqual(list(top["threads"]), [1, 3, 2, 1])
        self.assertEqual(list(top["count"]), [1, 11, 4, 9])
        self.assertEqual(list(top["avg_wait_ns"]), [50000.0, 2000.0, 2500.0, 500.0])
        self.assertEqual(list(top["name"]), ["", "test_mutex_a", "", ""])
        self.assertEqual(len(mla.most_contended_locks(self.log, 2)), 2)

    def test_locks_by_threads(self):
        top = mla.locks_by_threads(self.log)
        self.assertEqual([int(v) for v in top["lock"]], [A, C, B, B])
        self.assertEqual(list(top["type"]), ["Mutex", "Spinlock", "RWLock:W", "RWLock:R"])
        self.assertEqual(list(top["threads"]), [3, 2, 1, 1])

    def test_headline_is_the_lock_that_cost_the_most_wait(self):
        # An mmap churn: a per-CPU spinlock that eight threads touch for 1.2 ms in all, and the
        # mmap_lock that three threads wait 9.4 s for (both sides). The headline is the
        # mmap_lock; the spinlock leads only the ranking by distinct threads.
        spin, mmap_lock, other = 0xFFFF888000001000, 0xFFFF888000002000, 0xFFFF888000003000
        lines = [f"s,w,P1_T{10 + k},Spinlock,{spin:#x},{t(0)},150000,3,-1\n" for k in range(8)]
        lines += [f"s,w,P1_T{10 + k},Semaphore:W,{mmap_lock:#x},{t(k)},2000000000,40,-1\n" for k in range(3)]
        lines += [f"s,w,P1_T{10 + k},Semaphore:R,{mmap_lock:#x},{t(k)},1133333333,90,-1\n" for k in range(3)]
        lines += [f"s,w,P1_T{10 + k},Mutex,{other:#x},{t(1)},25000000,5,-1\n" for k in range(2)]
        log = load("".join(lines), period_ns=P)
        top = mla.most_contended_locks(log)
        self.assertEqual([(int(r.lock), r.type) for r in top.itertuples()],
                         [(mmap_lock, "Semaphore:W"), (mmap_lock, "Semaphore:R"), (other, "Mutex"),
                          (spin, "Spinlock")])
        self.assertEqual(int(top["wait_ns"].iloc[0] + top["wait_ns"].iloc[1]), 9_399_999_999)
        self.assertEqual(int(top["wait_ns"].iloc[3]), 1_200_000)
        self.assertEqual((int(mla.locks_by_threads(log)["lock"].iloc[0])), spin)

    def test_timeline_fills_gaps_with_zero(self):
        tl = mla.lock_timeline(self.log, A)
        self.assertEqual(list(tl["start_ns"]), [t(0), t(1), t(2), t(3)])
        self.assertEqual(list(tl["t_ms"]), [0.0, 50.0, 100.0, 150.0])
        self.assertEqual(list(tl["threads"]), [2, 0, 2, 1])
        self.assertEqual(list(tl["wait_ns"]), [4000, 0, 12000, 6000])
        self.assertEqual(list(tl["count"]), [4, 0, 4, 3])
        self.assertEqual(list(tl["avg_wait_ns"]), [1000.0, 0.0, 3000.0, 2000.0])

    def test_timeline_spans_only_the_lock_one_block_per_side(self):
        tl = mla.lock_timeline(self.log, B)
        self.assertEqual(list(tl["t_ms"]), [50.0, 100.0, 150.0, 200.0] * 2)
        self.assertEqual(list(tl["type"]), ["RWLock:R"] * 4 + ["RWLock:W"] * 4)
        self.assertEqual(list(tl["threads"]), [0, 0, 0, 1, 1, 0, 0, 0])
        self.assertEqual(list(tl["wait_ns"]), [0, 0, 0, 4500, 50000, 0, 0, 0])

    def test_lock_given_as_hex_string_or_name(self):
        expected = mla.lock_timeline(self.log, A)
        self.assertTrue(mla.lock_timeline(self.log, f"{A:#x}").equals(expected))
        self.assertTrue(mla.lock_timeline(self.log, "test_mutex_a").equals(expected))

    def test_unknown_lock(self):
        with self.assertRaises(KeyError):
            mla.lock_timeline(self.log, 0x1234)
        with self.assertRaises(KeyError):
            mla.lock_threads(self.log, "no_such_lock")

    def test_lock_threads_with_first_stack(self):
        th = mla.lock_threads(self.log, A)
        self.assertEqual(list(th["tid"]), [201, 102, 101])   # by total wait
        self.assertEqual(list(th["pid"]), [200, 100, 100])
        self.assertEqual(list(th["command"]), ["db", "worker", "worker"])
        self.assertEqual(list(th["stackid"]), [5, 2, 1])
        self.assertEqual(th["stack"].iloc[2], self.log.stacks[1])

    def test_lock_threads_lost_stack_and_sides_apart(self):
        th = mla.lock_threads(self.log, B)
        self.assertEqual(list(th["tid"]), [301, 301])
        self.assertEqual(list(th["type"]), ["RWLock:W", "RWLock:R"])
        self.assertEqual(list(th["wait_ns"]), [50000, 4500])
        self.assertEqual(list(th["stackid"]), [-3, -7])
        self.assertEqual(list(th["stack"]), [[], []])

    def test_lock_threads_stack_never_printed(self):
        th = mla.lock_threads(self.log, C).set_index("tid")
        self.assertEqual(th.loc[301, "stackid"], 9)
        self.assertEqual(th.loc[301, "stack"], [])
        self.assertEqual(th.loc[101, "stack"], self.log.stacks[4])

    def test_worst_by_avg_wait_respects_min_threads(self):
        worst = mla.worst_locks_by_avg_wait(self.log, min_threads=2)
        self.assertEqual([int(v) for v in worst["lock"]], [C, A])
        self.assertEqual(list(worst["avg_wait_ns"]), [2500.0, 2000.0])
        everyone = mla.worst_locks_by_avg_wait(self.log, min_threads=1)
        self.assertEqual([int(v) for v in everyone["lock"]], [B, C, A, B])
        self.assertEqual(list(everyone["type"]), ["RWLock:W", "Spinlock", "Mutex", "RWLock:R"])
        self.assertEqual(list(everyone["avg_wait_ns"]), [50000.0, 2500.0, 2000.0, 500.0])

    def test_worst_by_worst_period(self):
        worst = mla.worst_locks_by_worst_period(self.log)
        self.assertEqual([int(v) for v in worst["lock"]], [B, C, A, B])
        self.assertEqual(list(worst["type"]), ["RWLock:W", "Spinlock", "Mutex", "RWLock:R"])
        self.assertEqual(list(worst["avg_wait_ns"]), [50000.0, 4000.0, 3000.0, 500.0])
        self.assertEqual(list(worst["start_ns"]), [t(1), t(0), t(2), t(4)])
        self.assertEqual(list(worst["t_ms"]), [50.0, 0.0, 100.0, 200.0])

    def test_worst_wait_per_period(self):
        worst = mla.worst_wait_per_period(self.log)
        self.assertEqual(list(worst["t_ms"]), [0.0, 50.0, 100.0, 150.0, 200.0])
        self.assertEqual([int(v) for v in worst["lock"]], [C, B, A, A, C])
        self.assertEqual(list(worst["type"]), ["Spinlock", "RWLock:W", "Mutex", "Mutex", "Spinlock"])
        self.assertEqual(list(worst["avg_wait_ns"]), [4000.0, 50000.0, 3000.0, 2000.0, 1000.0])

    def test_worst_wait_per_period_fills_empty_periods(self):
        text = "".join(f"s,x,P1_T2,Mutex,{A:#x},{t(k)},{k + 1}0,1,-1\n" for k in (0, 2))
        worst = mla.worst_wait_per_period(load(text, period_ns=P))
        self.assertEqual(list(worst["avg_wait_ns"]), [10.0, 0.0, 30.0])
        self.assertTrue(worst["lock"].isna().iloc[1])
        self.assertEqual(int(worst["lock"].iloc[2]), A)


class TestPlots(unittest.TestCase):
    def setUp(self):
        self.log = load()
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def assert_png(self, path):
        data = Path(path).read_bytes()
        self.assertGreater(len(data), 1000)
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")

    def test_worst_wait_plot_in_ms_and_us(self):
        png = self.dir / "worst.png"
        ax = mla.plot_worst_wait_per_period(self.log, png).axes[0]
        self.assert_png(png)
        self.assertIn("[ms]", ax.get_xlabel())
        self.assertIn("[µs]", ax.get_ylabel())
        self.assertEqual(list(ax.lines[0].get_xdata()), [0.0, 50.0, 100.0, 150.0, 200.0])
        self.assertEqual(list(ax.lines[0].get_ydata()), [4.0, 50.0, 3.0, 2.0, 1.0])

    def test_lock_avg_wait_plot(self):
        png = self.dir / "avg.png"
        ax = mla.plot_lock_avg_wait(self.log, A, png).axes[0]
        self.assert_png(png)
        self.assertIn("[µs]", ax.get_ylabel())
        self.assertEqual(list(ax.lines[0].get_ydata()), [1.0, 0.0, 3.0, 2.0])

    def test_read_write_sides_plotted_apart(self):
        ax = mla.plot_lock_avg_wait(self.log, B, self.dir / "b.png").axes[0]
        self.assertEqual([line.get_label() for line in ax.lines], ["RWLock:R", "RWLock:W"])
        self.assertEqual(list(ax.lines[0].get_ydata()), [0.0, 0.0, 0.0, 0.5])
        self.assertEqual(list(ax.lines[1].get_ydata()), [50.0, 0.0, 0.0, 0.0])
        axes = mla.plot_lock_timeline(self.log, B, self.dir / "bt.png").axes
        self.assertEqual([p.get_height() for p in axes[1].patches], [0, 0, 0, 4.5, 50.0, 0, 0, 0])
        self.assertEqual([t.get_text() for t in axes[1].get_legend().get_texts()], ["RWLock:R", "RWLock:W"])

    def test_lock_timeline_plot(self):
        png = self.dir / "timeline.png"
        axes = mla.plot_lock_timeline(self.log, A, png).axes
        self.assert_png(png)
        self.assertEqual([ax.get_ylabel() for ax in axes],
                         ["threads [count]", "total wait [µs]", "acquisitions [count]"])
        self.assertEqual([p.get_height() for p in axes[0].patches], [2, 0, 2, 1])
        self.assertEqual([p.get_height() for p in axes[1].patches], [4.0, 0.0, 12.0, 6.0])
        self.assertIn("[ms]", axes[2].get_xlabel())


class TestCli(unittest.TestCase):
    def run_main(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = mla.main([str(a) for a in args])
        return code, out.getvalue(), err.getvalue()

    def test_cli_prints_tables_and_writes_pngs(self):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "m.log"
            log.write_text(LOG)
            code, out, _ = self.run_main(log, "--png-dir", Path(tmp) / "png")
            self.assertEqual(code, 0)
            headline = out.split("== Most contended locks (total wait) ==\n")[1].splitlines()
            self.assertRegex(headline[1], rf"^{B:#x} +RWLock:W +1 +50000 ")
            self.assertRegex(headline[2], rf"^{A:#x} test_mutex_a +Mutex +3 +22000 ")
            by_threads = out.split("== Locks by distinct threads ==\n")[1].splitlines()
            self.assertRegex(by_threads[1], rf"^{A:#x} test_mutex_a +Mutex +3 ")
            self.assertIn(f"Timeline of lock {B:#x}", out)
            pngs = sorted(p.name for p in (Path(tmp) / "png").iterdir())
            self.assertEqual(pngs, [f"lock_{B:x}_avg_wait.png", f"lock_{B:x}_timeline.png",
                                    "worst_wait_per_period.png"])
            for png in (Path(tmp) / "png").iterdir():
                self.assertGreater(png.stat().st_size, 0)

    def test_cli_malformed_log_exits_1_with_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "bad.log"
            log.write_text("s,x,P1_T2,Mutex,0x10,0,1,1,-1\ns,broken\n")
            code, out, err = self.run_main(log, "--png-dir", tmp)
            self.assertEqual(code, 1)
            self.assertEqual(len(err.splitlines()), 1)
            self.assertIn("line 2", err)
            self.assertEqual(list(Path(tmp).glob("*.png")), [])

    def test_cli_missing_log_exits_1(self):
        with tempfile.TemporaryDirectory() as tmp:
            code, _, err = self.run_main(Path(tmp) / "missing.log", "--png-dir", tmp)
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1)


def run_notebook(test, log_path, tmp):
    """Executes the notebook headless on `log_path`; returns the names of the PNGs it wrote."""
    nbconvert = shutil.which("jupyter-nbconvert")
    if nbconvert is None:
        if os.environ.get("CI") == "true":
            test.fail("jupyter-nbconvert is required when CI=true")
        test.skipTest("jupyter-nbconvert is not installed")
    env = dict(os.environ, MKLOCKSTAT_LOG=str(log_path),
               MKLOCKSTAT_PNG_DIR=str(tmp / "png"), JUPYTER_RUNTIME_DIR=str(tmp / "rt"),
               IPYTHONDIR=str(tmp / "ipython"), MPLCONFIGDIR=str(tmp / "mpl"))
    result = subprocess.run(
        [nbconvert, "--to", "notebook", "--execute", "--output-dir", str(tmp / "out"),
         "--ExecutePreprocessor.timeout=300", str(ANALYSIS_DIR / "mklockstat.ipynb")],
        env=env, capture_output=True, text=True, timeout=600)
    test.assertEqual(result.returncode, 0, result.stderr[-3000:])
    test.assertTrue((tmp / "out" / "mklockstat.ipynb").is_file())
    return sorted(p.name for p in (tmp / "png").glob("*.png"))


class TestNotebook(unittest.TestCase):
    def test_notebook_executes(self):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "m.log").write_text(LOG)
            pngs = run_notebook(self, tmp / "m.log", tmp)
            self.assertEqual(pngs, [f"lock_{B:x}_avg_wait.png", f"lock_{B:x}_timeline.png",
                                    "worst_wait_per_period.png"])


# A log recorded from a real mklockstat run (tracepoint backend) while mmap_contend's four threads
# queued on their mmap_lock; its second comment line names the workload's pid and tids.
REAL_LOG = Path(__file__).resolve().parents[1] / "data" / "mklockstat-sample.log"


def real_workload():
    for line in REAL_LOG.read_text().splitlines():
        if line.startswith("# mmap_contend pid "):
            fields = line.split()
            return int(fields[3]), {int(t) for t in fields[5].split(",")}
    raise AssertionError("the sample log does not name its workload")


class TestRealLog(unittest.TestCase):
    def setUp(self):
        self.log = mla.load_log(REAL_LOG)
        self.pid, self.tids = real_workload()

    def test_real_log_has_one_time_grid(self):
        s = self.log.samples
        self.assertEqual(self.log.period_ns, P)
        self.assertGreater(len(s), 100)
        self.assertTrue((s["start_ns"] % P == 0).all())

    def test_real_log_prints_every_stack_before_its_first_use(self):
        printed = set()
        for line in REAL_LOG.read_text().splitlines():
            fields = line.split(",")
            if fields[0] == "t":
                self.assertNotIn(fields[1], printed)
                self.assertGreater(len(fields), 2)
                printed.add(fields[1])
            elif fields[0] == "s" and int(fields[8]) >= 0:
                self.assertIn(fields[8], printed, line)

    def test_real_log_workload_threads(self):
        mine = self.log.samples[self.log.samples["command"] == "mmap_contend"]
        self.assertEqual(set(mine["pid"]), {self.pid})
        self.assertEqual(set(mine["tid"]), self.tids)
        self.assertEqual(set(mine["type"]), {"Semaphore:R", "Semaphore:W"})

    def test_real_log_mmap_lock_is_most_contended(self):
        top = mla.most_contended_locks(self.log, 1).iloc[0]
        s = self.log.samples
        self.assertEqual(top["wait_ns"], s.groupby(["lock", "type"])["wait_ns"].sum().max())
        self.assertIn(top["type"], ("Semaphore:R", "Semaphore:W"))
        threads = mla.lock_threads(self.log, int(top["lock"]))
        self.assertTrue(self.tids <= set(threads["tid"]))
        for stack in threads["stack"]:
            self.assertRegex(stack[0], r"^rwsem_down_(read|write)_slowpath\+0x")

    def test_real_log_rankings_and_periods(self):
        self.assertGreater(len(mla.worst_locks_by_avg_wait(self.log, min_threads=2)), 0)
        self.assertGreater(len(mla.worst_locks_by_worst_period(self.log)), 0)
        worst = mla.worst_wait_per_period(self.log)
        s = self.log.samples
        self.assertEqual(len(worst), (s["start_ns"].max() - s["start_ns"].min()) // P + 1)
        self.assertTrue((worst["avg_wait_ns"] >= 0).all())

    def test_notebook_executes_on_real_log(self):
        top = int(mla.most_contended_locks(self.log, 1)["lock"].iloc[0])
        with tempfile.TemporaryDirectory() as tmp:
            pngs = run_notebook(self, REAL_LOG, Path(tmp))
        self.assertEqual(pngs, [f"lock_{top:x}_avg_wait.png", f"lock_{top:x}_timeline.png",
                                "worst_wait_per_period.png"])


if __name__ == "__main__":
    unittest.main()
