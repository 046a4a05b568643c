#!/usr/bin/env python3
"""lockstat -p on a program of an older glibc (2.31, Debian bullseye), which keeps its pthread
functions in a separate libpthread mapped under its real file name (libpthread-2.31.so).

The bullseye root is built once with debootstrap (plus gcc and libc6-dev inside it) and cached in
$LOCKKIT_TEST_CACHE/bullseye (default /var/cache/lockkit-tests/bullseye); a stamp file marks it
complete, and only a missing or incomplete root is rebuilt (~1.5 min with network, then seconds).
lockwork is compiled and run inside that root and traced from outside; lockstat's counts must
equal the workload's own record."""
import fcntl
import os
import shutil
import subprocess
import tempfile
import unittest

import lockkit_testlib as lk

CACHE = os.path.join(os.environ.get("LOCKKIT_TEST_CACHE", "/var/cache/lockkit-tests"), "bullseye")
STAMP = ".lockkit-complete"
SUITE = "bullseye"
MIRROR = os.environ.get("LOCKKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


def run(argv, timeout, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def bullseye_root():
    """The cached bullseye root with gcc, built when missing. Returns its path."""
    if os.path.exists(os.path.join(CACHE, STAMP)):
        return CACHE
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    with open(CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it
        if os.path.exists(os.path.join(CACHE, STAMP)):
            return CACHE
        partial = CACHE + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(CACHE, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", SUITE, partial, MIRROR], timeout=600)
        run(["chroot", partial, "apt-get", "install", "-y", "-q", "--no-install-recommends", "gcc", "libc6-dev"],
            timeout=600, env=CHROOT_ENV)
        open(os.path.join(partial, STAMP), "w").close()
        os.rename(partial, CACHE)
    return CACHE


class OldGlibc(unittest.TestCase):
    def setUp(self):
        lk.require_bpf(self)
        if shutil.which("debootstrap") is None and not os.path.exists(os.path.join(CACHE, STAMP)):
            lk.skip_unless_ci(self, "debootstrap is not installed (scripts/setup installs it)")
        self.root = bullseye_root()
        # The workload's files live inside the root, where the chrooted program sees them under /tmp.
        self.work_dir = tempfile.mkdtemp(prefix="lockkit-", dir=os.path.join(self.root, "tmp"))
        self.addCleanup(shutil.rmtree, self.work_dir, True)
        self.inside = "/tmp/" + os.path.basename(self.work_dir)
        src = os.path.join(os.environ.get("LOCKKIT_SOURCE", os.path.join(os.path.dirname(__file__), "..", "..")),
                           "tests", "workloads", "lockwork.c")
        shutil.copy(src, self.work_dir)
        run(["chroot", self.root, "gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-pthread", "-o",
             f"{self.inside}/lockwork", f"{self.inside}/lockwork.c"], timeout=120, env=CHROOT_ENV)

    def test_counts_of_a_glibc_2_31_program_match_its_record(self):
        json_path = os.path.join(self.work_dir, "lockstat.json")
        work = subprocess.Popen(["chroot", self.root, f"{self.inside}/lockwork", f"{self.inside}/record.json",
                                 "--wait-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=CHROOT_ENV)
        tool = None
        try:
            self.assertEqual(work.stdout.readline().strip(), f"pid {work.pid}")
            with open(f"/proc/{work.pid}/maps") as f:
                self.assertIn("/libpthread-2.31.so", f.read(), "the bullseye program should map libpthread-2.31.so")
            tool = lk.Proc([lk.binary("lockstat"), "-p", str(work.pid), "--json", json_path], tmpdir=self.work_dir)
            tracing = tool.wait_for_stderr("Tracing pid", timeout=120)
            self.assertIn(f"{self.root}/", tracing)
            self.assertIn("libpthread-2.31.so", tracing)
            work.stdin.write("go\n")
            work.stdin.flush()
            self.assertEqual(work.wait(timeout=120), 0)
            rc, _ = tool.finish(timeout=60)
            self.assertEqual(rc, 0, tool.stderr())
        finally:
            for p in (work, tool.p if tool else None):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
            work.stdin.close()
            work.stdout.close()
        lk.assert_lockwork_counts(self, lk.load_json(json_path), lk.load_json(os.path.join(self.work_dir, "record.json")))


if __name__ == "__main__":
    lk.main()
