/* locktrace: per-lock futex statistics from the futex system calls and scheduler switches.
 *
 * sys_enter_* records the call (address, class, user stack) per thread; sched_switch splits the time
 * inside the call into blocked intervals (switched out not runnable, until switched back in) and the
 * rest; sys_exit_* adds the finished call to its row.
 *
 * Configuration comes as -D flags: TARGET_PID (tgid, 0 = all), TARGET_TID (0 = all), SELF_PID (the
 * tool itself, never traced), STATE_MASK (prev_state bits meaning "not runnable"), the futex calls'
 * numbers NR_FUTEX, NR_FUTEX_WAIT, NR_FUTEX_WAKE, NR_FUTEX_REQUEUE, NR_FUTEX_WAITV, MAX_CALLS, MAX_STATS, MAX_ERRS, MAX_HISTS, MAX_PIDS, MAX_DROPS, and the stack maps' STACK_ENTRIES, UNWIND_ROWS, UNWIND_MAPS.
 * The `drops` array (one counter per enum lt_drop), count_drop() and the filter lk_traced() come
 * from common.h. */
#include <uapi/linux/ptrace.h>
#ifndef LOCKKIT_EMBEDDED
#include "locktrace.h"
#endif

#define LT_E2BIG 7

BPF_HASH(calls, u32, struct lt_call, MAX_CALLS);
BPF_HASH(stats, struct lt_stat_key, struct lt_stat_val, MAX_STATS);
BPF_HASH(errs, struct lt_err_key, u64, MAX_ERRS);
BPF_HASH(hists, struct lt_hist_key, u64, MAX_HISTS);
BPF_HASH(pids, u32, u32, MAX_PIDS);
BPF_ARRAY(dbg, u64, LT_DBG_MAX);
_Static_assert(MAX_DROPS == LT_DROP_MAX, "the drops array holds one counter per drop reason");

static __always_inline int on_enter(void *ctx, u32 sys, u64 op, u64 uaddr) {
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return 0;
  u32 tid = (u32)id;
  struct lt_call c = {};
  c.uaddr = uaddr;
  c.cls = lt_classify(sys, op);
  c.caller = lk_syscall_sp_word();
  c.stackid = lk_user_stack_syscall();
  if (c.stackid < 0)
    count_drop(LT_DROP_STACK_LOST);
  c.start_ns = bpf_ktime_get_ns(); /* last, so that the probe's own work is not counted */
  if (calls.update(&tid, &c) != 0) {
    count_drop(LT_DROP_CALLS_FULL);
    return 0;
  }
  dbg.atomic_increment(LT_DBG_ENTERS);
  return 0;
}

static __always_inline struct lt_stat_val *stat_row(struct lt_stat_key *k) {
  struct lt_stat_val *v = stats.lookup(k);
  if (v)
    return v; /* the common case, without taking the thread's name */
  struct lt_stat_val zero = {};
  bpf_get_current_comm(&zero.comm, sizeof(zero.comm));
  v = lk_or_drop(stats.lookup_or_try_init(k, &zero), LT_DROP_STATS_FULL);
  if (!v)
    return 0;
  u32 pid = k->pid, one = 1;
  if (pids.insert(&pid, &one) == -LT_E2BIG)
    count_drop(LT_DROP_PIDS_FULL);
  return v;
}

static __always_inline void err_add(struct lt_stat_key *k, s32 err) {
  struct lt_err_key ek = {};
  ek.row = *k;
  ek.err = err;
  u64 zero = 0;
  if (lk_add(errs.lookup_or_try_init(&ek, &zero), 1) != 0)
    count_drop(LT_DROP_ERRS_FULL);
}

static __always_inline void hist_add(u32 pid, u64 uaddr, u64 blocked_ns) {
  struct lt_hist_key k = {};
  k.uaddr = uaddr;
  k.pid = pid;
  k.slot = lk_log2_slot(blocked_ns / 1000);
  u64 zero = 0;
  if (lk_add(hists.lookup_or_try_init(&k, &zero), 1) != 0)
    count_drop(LT_DROP_HIST_FULL);
}

static __always_inline int on_exit(s64 ret) {
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return 0;
  u64 now = bpf_ktime_get_ns();
  u32 tid = (u32)id;
  dbg.atomic_increment(LT_DBG_EXITS);
  struct lt_call *cp = calls.lookup(&tid);
  if (!cp) {
    dbg.atomic_increment(LT_DBG_ORPHAN_EXITS);
    return 0;
  }
  struct lt_call c = *cp;
  calls.delete(&tid);

  u64 blocked = 0, sys = 0;
  lt_call_finish(&c, now, &blocked, &sys);
  if (c.preempts > 0)
    dbg.atomic_increment(LT_DBG_PREEMPTED);
  if (c.blocks > 1)
    dbg.atomic_increment(LT_DBG_BLOCKED_TWICE);

  struct lt_stat_key k = {};
  k.uaddr = c.uaddr;
  k.caller = c.caller;
  k.pid = id >> 32;
  k.tid = tid;
  k.stackid = c.stackid;
  struct lt_stat_val *v = stat_row(&k);
  if (v)
    lt_stat_add(v, c.cls, blocked, sys, c.blocks, ret);
  if (v && ret < 0)
    err_add(&k, (s32)-ret);
  if (c.cls == LT_CLASS_WAIT)
    hist_add(k.pid, c.uaddr, blocked);
  return 0;
}

int on_switch(struct tracepoint__sched__sched_switch *args) {
  u64 now = bpf_ktime_get_ns();
  u32 prev = args->prev_pid;
  u32 next = args->next_pid;
  struct lt_call *c;
  if (prev != 0) {
    c = calls.lookup(&prev);
    if (c)
      lt_call_switch_out(c, args->prev_state, STATE_MASK, now);
  }
  if (next != 0) {
    c = calls.lookup(&next);
    if (c)
      lt_call_switch_in(c, now);
  }
  return LK_TP_PASS_ON;
}

/* Every sys_exit_* tracepoint has the same layout (ret at offset 16): one program serves them all. */
int futex_exit(struct tracepoint__syscalls__sys_exit_futex *args) {
  on_exit(args->ret);
  return LK_TP_PASS_ON;
}

/* struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 reserved; }: the first entry's uaddr. */
static __always_inline u64 first_waitv_addr(u64 waiters) {
  u64 uaddr = 0;
  if (waiters)
    bpf_probe_read_user(&uaddr, sizeof(uaddr), (void *)(waiters + 8));
  return uaddr;
}

/* Every futex call's sys_enter_* tracepoint runs this one program, since a program that walks
 * stacks takes the verifier a while to load. The call is told by its number (NR_FUTEX...), and the
 * first two arguments sit where sys_enter_futex has uaddr and op in every sys_enter_* record:
 *   futex(uaddr, op, ...)  futex_wait(uaddr, ...)  futex_wake(uaddr, ...)
 *   futex_requeue(waiters, ...)  futex_waitv(waiters, nr_futexes, ...) */
int futex_any_enter(struct tracepoint__syscalls__sys_enter_futex *args) {
  s64 nr = args->__syscall_nr;
  u64 arg0 = (u64)args->uaddr, arg1 = (u64)args->op;
  u32 sys;
  u64 op = 0, uaddr = arg0;
  if (nr == NR_FUTEX) {
    sys = LT_SYS_FUTEX;
    op = arg1;
  } else if (nr == NR_FUTEX_WAIT) {
    sys = LT_SYS_FUTEX_WAIT;
  } else if (nr == NR_FUTEX_WAKE) {
    sys = LT_SYS_FUTEX_WAKE;
  } else if (nr == NR_FUTEX_REQUEUE) {
    sys = LT_SYS_FUTEX_REQUEUE;
    uaddr = first_waitv_addr(arg0);
  } else if (nr == NR_FUTEX_WAITV) {
    sys = LT_SYS_FUTEX_WAITV;
    uaddr = (u32)arg1 > 0 ? first_waitv_addr(arg0) : 0;
  } else {
    return LK_TP_PASS_ON;
  }
  on_enter(args, sys, op, uaddr);
  return LK_TP_PASS_ON;
}
