/* The lab mklockstat's BPF side: the kernel's lock:contention_begin and lock:contention_end
 * tracepoints time every contended acquisition of a kernel lock by the traced process, and the
 * waits are summed per (thread, lock, flags) in fixed periods of PERIOD_NS.
 *
 * Each (thread, lock, flags) has at most one open period in `periods`. A wait that ends in the open
 * period is added to it; a wait that ends in a later period finds the open one finished: it is
 * pushed to user space through the `finished` perf buffer, and a new period opens with this wait.
 * A thread that stops waiting leaves its last period open: user space takes such periods out of
 * the map itself once they are over (lookup-and-delete), and all of them at exit. Whoever deletes
 * an entry first owns it, so every period reaches user space exactly once.
 *
 * -D flags: TARGET_PID, PERIOD_NS, STACK_ENTRIES, MAX_WAITS, MAX_PERIODS. */
#include <uapi/linux/ptrace.h>

BPF_HASH(waits, struct lab_wait_key, struct lab_wait, MAX_WAITS);
BPF_HASH(periods, struct lab_key, struct lab_period, MAX_PERIODS);
BPF_HASH(totals, struct lab_key, struct lab_total, MAX_PERIODS);
BPF_ARRAY(counters, u64, LAB_C_MAX);
BPF_PERF_OUTPUT(finished);

/* A thread found the lock taken and starts to wait. A mutex fires this twice for one wait: once
 * before it spins on the owner (flags MUTEX|SPIN), once more before it sleeps (MUTEX); the wait
 * starts at the first. */
TRACEPOINT_PROBE(lock, contention_begin) {
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return LK_TP_PASS_ON;
  counters.atomic_increment(LAB_C_BEGINS);
  struct lab_wait_key wk = {};
  wk.lock = (u64)args->lock_addr;
  wk.tid = (u32)id;
  if (waits.lookup(&wk)) {
    counters.atomic_increment(LAB_C_REPEATS);
    return LK_TP_PASS_ON;
  }
  struct lab_wait w = {};
  w.flags = args->flags;
  w.stackid = lk_kernel_stack(args);
  if (w.stackid < 0)
    counters.atomic_increment(LAB_C_STACK_LOST);
  w.start_ns = bpf_ktime_get_ns(); /* last: the probe's own work is not waiting */
  if (waits.update(&wk, &w) != 0)
    counters.atomic_increment(LAB_C_PENDING_FULL);
  return LK_TP_PASS_ON;
}

/* The wait is over (args->ret is 0 when the lock was taken, an error when the wait was given up). */
TRACEPOINT_PROBE(lock, contention_end) {
  u64 now = bpf_ktime_get_ns();
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return LK_TP_PASS_ON;
  counters.atomic_increment(LAB_C_ENDS);
  struct lab_wait_key wk = {};
  wk.lock = (u64)args->lock_addr;
  wk.tid = (u32)id;
  struct lab_wait *wp = waits.lookup(&wk);
  if (!wp) {
    counters.atomic_increment(LAB_C_UNMATCHED);
    return LK_TP_PASS_ON;
  }
  struct lab_wait w = *wp;
  waits.delete(&wk);
  u64 wait = now > w.start_ns ? now - w.start_ns : 0;
  counters.atomic_increment(LAB_C_WAITS);
  counters.atomic_increment(LAB_C_WAIT_NS, wait);

  struct lab_key k = {};
  k.lock = wk.lock;
  k.pid = id >> 32;
  k.tid = wk.tid;
  k.flags = w.flags;

  /* The run's totals of this (thread, lock, flags). Only this thread writes entries with its tid,
   * so the updates in place are safe. */
  struct lab_total *t = totals.lookup(&k);
  if (t) {
    t->count += 1;
    t->wait_ns += wait;
    t->last_end_ns = now;
  } else {
    struct lab_total nt = {};
    nt.count = 1;
    nt.wait_ns = wait;
    nt.first_end_ns = now;
    nt.last_end_ns = now;
    if (totals.update(&k, &nt) != 0)
      counters.atomic_increment(LAB_C_TOTALS_FULL);
  }

  // BEGIN TODO 1: add the wait to its period, or push the finished period out and open a new one
  // HINT: A wait belongs to the period in which it ended: the one starting at now - now % PERIOD_NS.
  // HINT: Look up k's open period in `periods`. If it is that period, add the wait to it (wait_ns,
  // HINT: count) and you are done: only this thread writes it, in place is fine. If it is an older
  // HINT: one, it is finished: delete it from the map and, only if the delete succeeded (user space
  // HINT: may have taken it just now), send it as a struct lab_sample with finished.perf_submit(args,
  // HINT: &s, sizeof(s)); count LAB_C_OUTPUT_FAILED when that fails, LAB_C_ROLLOVERS when it works.
  // HINT: Then open the new period: start, this wait, count 1, w.stackid, the thread's comm
  // HINT: (bpf_get_current_comm); count LAB_C_PERIODS_FULL when periods.update fails.
  // STUB: LAB_TODO(1);
  u64 start = now - now % PERIOD_NS;
  struct lab_period *v = periods.lookup(&k);
  if (v && v->start == start) {
    v->wait_ns += wait;
    v->count += 1;
    return LK_TP_PASS_ON;
  }
  if (v) {
    struct lab_sample s = {};
    s.key = k;
    s.val = *v;
    if (periods.delete(&k) == 0) {
      if (finished.perf_submit(args, &s, sizeof(s)) != 0)
        counters.atomic_increment(LAB_C_OUTPUT_FAILED);
      else
        counters.atomic_increment(LAB_C_ROLLOVERS);
    }
  }
  struct lab_period n = {};
  n.start = start;
  n.wait_ns = wait;
  n.count = 1;
  n.stackid = w.stackid;
  bpf_get_current_comm(&n.comm, sizeof(n.comm));
  if (periods.update(&k, &n) != 0)
    counters.atomic_increment(LAB_C_PERIODS_FULL);
  // END TODO 1
  return LK_TP_PASS_ON;
}
