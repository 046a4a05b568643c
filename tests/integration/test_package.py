"""The Debian package: `cmake --build BUILD --target package` builds it; its control data names the
packages its binaries really need; it holds the tools, their man pages, the docs and the mklockstat
analysis files; and the tools it installs run from wherever it is unpacked, with the source and
build trees out of sight: --help, --version, man -l on each page, and real traced runs as root."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk

SOURCE = os.environ.get("LOCKKIT_SOURCE") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("LOCKKIT_BUILD") or os.path.join(SOURCE, "build")
TOOLS = ("lockstat", "locktrace", "mklockstat")
MAN_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "REQUIREMENTS", "OPTIONS", "EXAMPLES", "FIELDS",
                "OVERHEAD", "EXIT STATUS", "SEE ALSO")


def run(argv, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def project_version():
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith("CMAKE_PROJECT_VERSION:"):
                return line.split("=", 1)[1].strip()
    raise AssertionError("no CMAKE_PROJECT_VERSION in CMakeCache.txt")


def package_names(field):
    """'libc6 (>= 2.34), libbcc0 | libfoo' -> {'libc6', 'libbcc0', 'libfoo'}"""
    names = set()
    for alt in re.split(r"[,|]", field):
        alt = alt.strip()
        if alt:
            names.add(re.split(r"[\s(:]", alt)[0])
    return names


def long_options(help_text):
    return sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text)))


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.version = project_version()
        r = run(["cmake", "--build", BUILD, "--target", "package"], timeout=900)
        if r.returncode != 0:
            raise AssertionError(f"building the package failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        cls.deb = os.path.join(BUILD, "package", f"lockkit_{cls.version}_{arch}.deb")
        if not os.path.isfile(cls.deb):
            raise AssertionError(f"{cls.deb} was not built:\n{r.stdout[-2000:]}")
        cls.arch = arch
        cls.tmp = tempfile.mkdtemp(prefix="lockkit-package-")
        cls.root = os.path.join(cls.tmp, "root")
        r = run(["dpkg-deb", "-x", cls.deb, cls.root])
        if r.returncode != 0:
            raise AssertionError(f"dpkg-deb -x failed: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def field(self, name):
        r = run(["dpkg-deb", "-f", self.deb, name])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def installed(self, *parts):
        return os.path.join(self.root, "usr", *parts)

    def test_control_data(self):
        self.assertEqual(self.field("Package"), "lockkit")
        self.assertEqual(self.field("Version"), self.version)
        self.assertEqual(self.field("Architecture"), self.arch)
        depends = package_names(self.field("Depends"))
        # What the binaries link: libbcc (libbpfcc), elfutils' libelf and libdw, fmt, the C++ runtime.
        for p in ("libbpfcc", "libelf1", "libdw1", "libc6", "libstdc++6"):
            self.assertIn(p, depends, self.field("Depends"))
        self.assertIn(f"linux-headers-{self.arch}", package_names(self.field("Recommends")))
        # Every library a packaged tool links (its NEEDED entries) is in a package the Depends
        # name (dpkg-shlibdeps, checked against where the dynamic loader finds it here).
        for tool in TOOLS:
            exe = self.installed("bin", tool)
            dyn = run(["readelf", "-d", exe])
            self.assertEqual(dyn.returncode, 0, dyn.stderr)
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", dyn.stdout)
            self.assertIn("libbcc.so.0", needed)
            ldd = run(["ldd", exe])
            self.assertEqual(ldd.returncode, 0, ldd.stderr)
            found = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M))
            for soname in needed:
                if soname.startswith("ld-linux"):
                    continue
                self.assertIn(soname, found, f"{tool}: {soname} not found by the loader")
                path = found[soname]
                owner = run(["dpkg", "-S", os.path.realpath(path)])
                if owner.returncode != 0:
                    owner = run(["dpkg", "-S", path])
                self.assertEqual(owner.returncode, 0, f"{tool}: {soname} ({path}) belongs to no package")
                pkg = owner.stdout.split(":")[0].strip()
                self.assertIn(pkg, depends, f"{tool} needs {soname} from {pkg}, not in Depends")

    def test_contents(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        files = {line.split()[-1] if " -> " not in line else line.split()[-3] for line in r.stdout.splitlines()}
        files = {f.lstrip(".") for f in files}
        expected = {f"/usr/bin/{t}" for t in TOOLS} | {f"/usr/share/man/man8/{t}.8.gz" for t in TOOLS} | {
            "/usr/share/lockkit/mklockstat/mklockstat_analysis.py",
            "/usr/share/lockkit/mklockstat/mklockstat.ipynb",
            "/usr/share/doc/lockkit/README.md", "/usr/share/doc/lockkit/docs/install.md",
        } | {f"/usr/share/doc/lockkit/docs/{t}.md" for t in TOOLS}
        self.assertEqual(expected - files, set())
        for f in files:
            self.assertTrue(f.startswith("/usr/"), f"{f} outside /usr")
        # Only the tools are programs: no test workloads or unit test binaries.
        self.assertEqual(sorted(f for f in files if f.startswith("/usr/bin/") and not f.endswith("/")),
                         sorted(f"/usr/bin/{t}" for t in TOOLS))
        if os.path.isdir(os.path.join(SOURCE, "labs")):
            self.assertTrue(any(f.startswith("/usr/share/lockkit/labs/") for f in files), "labs not packaged")
        for t in TOOLS:
            mode = os.stat(self.installed("bin", t)).st_mode
            self.assertTrue(mode & 0o111, f"{t} is not executable")

    def test_help_version_and_man_pages(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                exe = self.installed("bin", tool)
                h = run([exe, "--help"])
                self.assertEqual(h.returncode, 0, h.stderr)
                self.assertIn(f"Usage:\n  {tool} ", h.stdout)
                v = run([exe, "--version"])
                self.assertEqual(v.returncode, 0, v.stderr)
                self.assertEqual(v.stdout.splitlines()[0], f"{tool} (lockkit) {self.version}")

                page = self.installed("share", "man", "man8", f"{tool}.8.gz")
                env = dict(os.environ, MANWIDTH="100", MANPAGER="cat", PAGER="cat", LC_ALL="C")
                m = run(["man", "--warnings", "-l", page], env=env)
                self.assertEqual(m.returncode, 0, m.stderr)
                self.assertEqual(m.stderr.strip(), "", f"groff warnings for {tool}.8")
                text = re.sub(r".\x08", "", m.stdout)
                self.assertIn(f"lockkit {self.version}", text)
                for s in MAN_SECTIONS:
                    self.assertRegex(text, rf"(?m)^{s}$", f"{tool}.8 has no {s} section")
                # Every option --help shows is in the man page and in the tool's doc.
                with open(os.path.join(SOURCE, "docs", f"{tool}.md")) as f:
                    doc = f.read()
                opts = long_options(h.stdout)
                self.assertIn("--version", opts)
                for o in opts:
                    self.assertTrue(o in text, f"{o} (in {tool} --help) is not in {tool}.8")
                    if o not in ("--help", "--version"):
                        self.assertTrue(o in doc, f"{o} (in {tool} --help) is not documented in docs/{tool}.md")

    def hidden_trees(self, argv):
        """argv run with the source and build trees hidden under empty tmpfs mounts (a private
        mount namespace), from a directory outside both."""
        script = f'mount -t tmpfs lockkit-hidden "{BUILD}" && mount -t tmpfs lockkit-hidden "{SOURCE}" && ' \
                 f'test ! -e "{BUILD}/bin" && cd "{self.tmp}" && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]

    def test_installed_tools_trace_without_the_build_tree(self):
        lk.require_bpf(self)
        work = os.path.join(self.tmp, "work")
        os.makedirs(work, exist_ok=True)
        lockwork = os.path.join(work, "lockwork")
        shutil.copy(os.path.join(BUILD, "bin", "lockwork"), lockwork)
        sample = os.path.join(work, "sample.log")
        shutil.copy(os.path.join(SOURCE, "tests", "data", "mklockstat-sample.log"), sample)
        record, report = os.path.join(work, "record.json"), os.path.join(work, "report.json")

        r = run(self.hidden_trees([self.installed("bin", "lockstat"), "--json", report, "--", lockwork, record]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Tracing", r.stderr)
        lk.assert_lockwork_counts(self, lk.load_json(report), lk.load_json(record))

        r = run(self.hidden_trees([self.installed("bin", "lockstat"), "--", "/bin/true"]))
        self.assertEqual(r.returncode, 0, r.stderr)

        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            r = run(self.hidden_trees([self.installed("bin", "locktrace"), "-p", str(sleeper.pid), "1"]))
        finally:
            sleeper.kill()
            sleeper.wait()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("pid,tid,addr,blocked_us,"), r.stdout[:200])

        log = os.path.join(work, "mk.log")
        r = run(self.hidden_trees([self.installed("bin", "mklockstat"), "--time", "1", "-o", log]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"mklockstat: time is up after [0-9.]+ s: \d+ samples")
        self.assertTrue(os.path.isfile(log))

        # The installed analysis module reads a log from wherever it is.
        r = run(self.hidden_trees(["/usr/bin/python3", self.installed("share", "lockkit", "mklockstat",
                                                                       "mklockstat_analysis.py"), sample]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("233 samples, 4 locks, 10 threads", r.stdout)


if __name__ == "__main__":
    lk.main()
