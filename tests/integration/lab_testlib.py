"""What CI checks of every lab (tests/integration/test_lab_<lab>.py): the reference solution passes
its grader; an untouched skeleton fails every task, naming its TODO; a skeleton with one TODO
filled in from the reference passes that task and no other; bad input is refused. Builds go
through labs/check (the skeletons are also compiled by the normal build). The same variant is
graded in several of these checks: one results directory lets each distinct tree run once."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import lockkit_testlib as lk

SOURCE = os.environ.get("LOCKKIT_SOURCE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
LABS = os.path.join(SOURCE, "labs")
sys.path.insert(0, LABS)
import labkit  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(lk.BIN))
_TASK = re.compile(r"^(PASS|FAIL)  task (\d+): ")


def lab_tests(lab):
    """A TestCase class checking lab `lab`."""

    class LabTest(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.results = tempfile.mkdtemp(prefix=f"lab-{lab}-results-")
            cls.todos = labkit.todos(lab)

        @classmethod
        def tearDownClass(cls):
            shutil.rmtree(cls.results, ignore_errors=True)

        def setUp(self):
            lk.require_bpf(self)

        def check(self, *args):
            env = dict(os.environ, LOCKKIT_BUILD_DIR=BUILD)
            r = subprocess.run([sys.executable, os.path.join(LABS, "check"), lab, *args, "--cache", self.results],
                               capture_output=True, text=True, timeout=1500, env=env)
            tasks = {}
            for line in r.stdout.splitlines():
                m = _TASK.match(line)
                if m:
                    tasks[int(m.group(2))] = (m.group(1), line)
            return r, tasks

        def assert_tasks(self, r, tasks, passing):
            self.assertNotIn("Traceback", r.stderr)
            self.assertEqual(set(tasks), set(self.todos), r.stdout + r.stderr)
            for n, (verdict, line) in tasks.items():
                if n in passing:
                    self.assertEqual(verdict, "PASS", line)
                else:
                    self.assertEqual(verdict, "FAIL", line)
                    self.assertIn(f"TODO {n} in {self.todos[n][0]}", line)
            total = len(self.todos)
            self.assertIn(f"{len(passing)}/{total} tasks pass", r.stdout)
            self.assertEqual(r.returncode, 0 if len(passing) == total else 1, r.stdout + r.stderr)

        def test_1_reference_passes(self):
            r, tasks = self.check("--solution")
            self.assert_tasks(r, tasks, set(self.todos))

        def test_2_skeleton_fails_every_task(self):
            r, tasks = self.check()
            self.assert_tasks(r, tasks, set())
            for n, (verdict, line) in tasks.items():
                self.assertIn("not done", line)

        def test_3_one_todo_filled_passes_that_task_only(self):
            ref = labkit.solution_files(lab)
            for n, (f, title) in self.todos.items():
                with self.subTest(todo=n), tempfile.TemporaryDirectory(prefix=f"lab-{lab}-{n}-") as d:
                    labkit.generate(lab, d)
                    path = os.path.join(d, f)
                    with open(path) as fh:
                        text = fh.read()
                    body = labkit.regions(ref[f], f)[n].body
                    with open(path, "w") as fh:
                        fh.write(labkit.splice(text, n, body, f))
                    r, tasks = self.check(d)
                    self.assert_tasks(r, tasks, {n})

        def test_4_bad_input(self):
            env = dict(os.environ, LOCKKIT_BUILD_DIR=BUILD)
            for args, phrase in (([], "unknown lab"), ([lab, "/nonexistent/lab-dir"], "no directory")):
                argv = [sys.executable, os.path.join(LABS, "check")] + (args or ["no-such-lab"])
                r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(phrase, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    LabTest.__name__ = f"Lab_{lab}"
    return LabTest
