/* locktrace: every struct that crosses the kernel/user boundary, and the small pieces of logic the
 * BPF program and the C++ side (unit tests) must agree on: how a futex call is classified and how
 * the time inside one call splits into blocked and sys time. Included by locktrace.bpf.c (the build
 * prepends it to the embedded BPF text) and by the C++ reader, which static_asserts sizes. */
#ifndef LOCKKIT_LOCKTRACE_H
#define LOCKKIT_LOCKTRACE_H

#ifndef LOCKKIT_EMBEDDED
#include "common.h"
#endif

/* futex(2) commands, from include/uapi/linux/futex.h. */
#define LT_FUTEX_WAIT 0
#define LT_FUTEX_WAKE 1
#define LT_FUTEX_FD 2
#define LT_FUTEX_REQUEUE 3
#define LT_FUTEX_CMP_REQUEUE 4
#define LT_FUTEX_WAKE_OP 5
#define LT_FUTEX_LOCK_PI 6
#define LT_FUTEX_UNLOCK_PI 7
#define LT_FUTEX_TRYLOCK_PI 8
#define LT_FUTEX_WAIT_BITSET 9
#define LT_FUTEX_WAKE_BITSET 10
#define LT_FUTEX_WAIT_REQUEUE_PI 11
#define LT_FUTEX_CMP_REQUEUE_PI 12
#define LT_FUTEX_LOCK_PI2 13
#define LT_FUTEX_PRIVATE_FLAG 128
#define LT_FUTEX_CLOCK_REALTIME 256
#define LT_FUTEX_CMD_MASK (~(LT_FUTEX_PRIVATE_FLAG | LT_FUTEX_CLOCK_REALTIME))

/* What a call does to the futex. */
enum lt_class { LT_CLASS_OTHER = 0, LT_CLASS_WAIT = 1, LT_CLASS_WAKE = 2 };

/* Which system call made it: futex(2) or one of the futex2 calls (Linux 5.16 / 6.7). */
enum lt_syscall {
  LT_SYS_FUTEX = 0,
  LT_SYS_FUTEX_WAIT,    /* futex_wait(2) */
  LT_SYS_FUTEX_WAKE,    /* futex_wake(2) */
  LT_SYS_FUTEX_WAITV,   /* futex_waitv(2): waits on several futexes, attributed to the first */
  LT_SYS_FUTEX_REQUEUE  /* futex_requeue(2): attributed to the first (source) futex */
};

/* futex(2): the command is op & FUTEX_CMD_MASK (the private and clock flags stripped). */
LK_INLINE __u32 lt_classify_op(__u64 op) {
  switch ((int)(__u32)op & LT_FUTEX_CMD_MASK) {
  case LT_FUTEX_WAIT:
  case LT_FUTEX_WAIT_BITSET:
  case LT_FUTEX_LOCK_PI:
  case LT_FUTEX_LOCK_PI2:
  case LT_FUTEX_WAIT_REQUEUE_PI:
  case LT_FUTEX_TRYLOCK_PI:
    return LT_CLASS_WAIT;
  case LT_FUTEX_WAKE:
  case LT_FUTEX_WAKE_OP:
  case LT_FUTEX_REQUEUE:
  case LT_FUTEX_CMP_REQUEUE:
  case LT_FUTEX_UNLOCK_PI:
  case LT_FUTEX_WAKE_BITSET:
  case LT_FUTEX_CMP_REQUEUE_PI:
    return LT_CLASS_WAKE;
  default:
    return LT_CLASS_OTHER;
  }
}

/* `op` is only meaningful for futex(2); the futex2 calls are one operation each. */
LK_INLINE __u32 lt_classify(__u32 sys, __u64 op) {
  switch (sys) {
  case LT_SYS_FUTEX:
    return lt_classify_op(op);
  case LT_SYS_FUTEX_WAIT:
  case LT_SYS_FUTEX_WAITV:
    return LT_CLASS_WAIT;
  case LT_SYS_FUTEX_WAKE:
  case LT_SYS_FUTEX_REQUEUE:
    return LT_CLASS_WAKE;
  default:
    return LT_CLASS_OTHER;
  }
}

/* sched_switch's prev_state. Since Linux 4.14 a preempted task is reported as TASK_REPORT_MAX (a
 * bit above every real state: 0x100 on 6.x, printed "R+"), and a task that goes to sleep by its
 * state bit (S=0x1, D=0x2, ...). The mask of "not runnable" bits is TASK_REPORT_MAX - 1; the tool
 * derives it from the tracepoint's format file and passes it as STATE_MASK. */
#define LT_DEFAULT_STATE_MASK 0xff

LK_INLINE int lt_state_blocked(__s64 prev_state, __s64 mask) { return (prev_state & mask) != 0; }

/* A thread inside a futex call, from sys_enter to sys_exit. */
struct lt_call {
  __u64 uaddr;
  __u64 caller;      /* word at the user stack pointer at entry (return address of a leaf wrapper) */
  __u64 start_ns;    /* sys_enter */
  __u64 off_ns;      /* when it was switched out not runnable; 0 while on CPU or runnable */
  __u64 blocked_ns;  /* sum of the completed blocked intervals */
  __s32 stackid;     /* user stack at entry; negative when it could not be stored */
  __u32 cls;         /* enum lt_class */
  __u32 blocks;      /* times switched out not runnable */
  __u32 preempts;    /* times switched out while still runnable */
};

/* sched_switch, the thread leaves the CPU. Sleeping starts a blocked interval; being preempted
 * does not (that time stays sys time). */
LK_INLINE void lt_call_switch_out(struct lt_call *c, __s64 prev_state, __s64 mask, __u64 now) {
  if (lt_state_blocked(prev_state, mask)) {
    if (c->off_ns == 0) {
      c->off_ns = now ? now : 1;
      c->blocks += 1;
    }
  } else {
    c->preempts += 1;
  }
}

/* sched_switch, the thread gets the CPU back: a blocked interval ends here. */
LK_INLINE void lt_call_switch_in(struct lt_call *c, __u64 now) {
  if (c->off_ns) {
    if (now > c->off_ns)
      c->blocked_ns += now - c->off_ns;
    c->off_ns = 0;
  }
}

/* sys_exit: blocked = the blocked intervals (wait operations only); sys = the rest of the call. */
LK_INLINE void lt_call_finish(const struct lt_call *c, __u64 now, __u64 *blocked, __u64 *sys) {
  __u64 total = now > c->start_ns ? now - c->start_ns : 0;
  __u64 b = c->blocked_ns;
  if (c->off_ns && now > c->off_ns)
    b += now - c->off_ns; /* no switch-in seen (cannot happen: sys_exit runs on a CPU) */
  if (c->cls != LT_CLASS_WAIT)
    b = 0;
  if (b > total)
    b = total;
  *blocked = b;
  *sys = total - b;
}

/* One row: per process, thread, futex address and user stack. */
struct lt_stat_key {
  __u64 uaddr;
  __u64 caller;   /* see lt_call.caller */
  __u32 pid;
  __u32 tid;
  __s32 stackid;
  __u32 pad;
};

struct lt_stat_val {
  __u64 blocked_ns;
  __u64 sys_ns;
  __u64 max_blocked_ns;  /* worst single call */
  __u64 max_sys_ns;      /* worst single call */
  __u64 wait_count;      /* wait operations */
  __u64 blocked_count;   /* wait operations that really blocked */
  __u64 wake_count;      /* wake operations */
  __u64 other_count;     /* other operations (FUTEX_FD, unknown commands) */
  __u64 errors;          /* calls that returned an error */
  char comm[16];         /* the thread's name when the row was created */
};

/* Adds one finished call to its row. */
LK_INLINE void lt_stat_add(struct lt_stat_val *v, __u32 cls, __u64 blocked, __u64 sys,
                           __u32 blocks, __s64 ret) {
  v->blocked_ns += blocked;
  v->sys_ns += sys;
  if (blocked > v->max_blocked_ns)
    v->max_blocked_ns = blocked;
  if (sys > v->max_sys_ns)
    v->max_sys_ns = sys;
  if (cls == LT_CLASS_WAIT) {
    v->wait_count += 1;
    if (blocks > 0)
      v->blocked_count += 1;
  } else if (cls == LT_CLASS_WAKE) {
    v->wake_count += 1;
  } else {
    v->other_count += 1;
  }
  if (ret < 0)
    v->errors += 1;
}

/* Errors of one row by errno. */
struct lt_err_key {
  struct lt_stat_key row;
  __s32 err;  /* positive errno */
  __u32 pad;
};

/* Blocked time per wait call in microseconds: log2 slots per (process, futex address). */
struct lt_hist_key {
  __u64 uaddr;
  __u32 pid;
  __u32 slot;  /* lk_log2_slot(blocked_ns / 1000) */
};

/* What BPF could not record; counted in the `drops` array and always reported. */
enum lt_drop {
  LT_DROP_CALLS_FULL = 0,  /* too many threads inside futex calls at once: a call was not traced */
  LT_DROP_STATS_FULL,      /* stats map full: a finished call was not recorded */
  LT_DROP_HIST_FULL,       /* histogram map full */
  LT_DROP_ERRS_FULL,       /* errno map full: an error is counted but not broken down */
  LT_DROP_PIDS_FULL,       /* too many processes: their frames may not resolve */
  LT_DROP_STACK_LOST,      /* a user stack could not be stored (the stack map is full) */
  LT_DROP_MAX
};

/* Sanity counters, printed by -d. */
enum lt_debug {
  LT_DBG_ENTERS = 0,        /* calls entered and traced */
  LT_DBG_EXITS,             /* exits seen for traced threads */
  LT_DBG_ORPHAN_EXITS,      /* exits without a matching enter (call began before tracing) */
  LT_DBG_PREEMPTED,         /* calls preempted at least once (the time is sys time) */
  LT_DBG_BLOCKED_TWICE,     /* calls that blocked more than once (blocked time is the sum) */
  LT_DBG_MAX
};

#endif
