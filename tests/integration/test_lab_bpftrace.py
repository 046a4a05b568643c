"""The bpftrace lab: its grader on the reference scripts, on the generated skeleton, and on a
skeleton with one exercise solved."""
import lab_testlib
import lockkit_testlib as lk

Lab_bpftrace = lab_testlib.lab_tests("bpftrace")

if __name__ == "__main__":
    lk.main()
