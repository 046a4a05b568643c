/* The lab locktrace's BPF side: the futex system call's enter and exit tracepoints, and
 * sched_switch to split the time inside each call into time asleep (blocked) and the rest (sys).
 * -D flags: TARGET_PID, STATE_MASK, STACK_ENTRIES, UNWIND_ROWS, UNWIND_MAPS, MAX_ROWS, MAX_THREADS. */
#include <uapi/linux/ptrace.h>

#define FUTEX_CMD_MASK 0x7f  /* without FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256) */

BPF_HASH(calls, u32, struct lab_call, MAX_THREADS);
BPF_HASH(rows, struct lab_row_key, struct lab_row, MAX_ROWS);
BPF_ARRAY(lost, u64, LAB_LOST_MAX);

/* Operations that put the caller to sleep until the word changes: FUTEX_WAIT (0), FUTEX_LOCK_PI
 * (6), FUTEX_WAIT_BITSET (9), FUTEX_WAIT_REQUEUE_PI (11), FUTEX_LOCK_PI2 (13). */
static __always_inline u32 is_wait_op(u32 op) {
  u32 cmd = op & FUTEX_CMD_MASK;
  return cmd == 0 || cmd == 6 || cmd == 9 || cmd == 11 || cmd == 13;
}

/* The word at the user stack pointer when the syscall was entered, from the saved user registers:
 * in a leaf wrapper like libc's syscall() it is the return address into the wrapper's caller. */
static __always_inline u64 entry_stack_word(void) {
  u64 regs = bpf_task_pt_regs(bpf_get_current_task_btf());
  u64 sp = 0, word = 0;
  if (regs == 0)
    return 0;
  bpf_probe_read_kernel(&sp, sizeof(sp), (void *)(regs + __builtin_offsetof(struct pt_regs, sp)));
  if (sp)
    bpf_probe_read_user(&word, sizeof(word), (void *)sp);
  return word;
}

int futex_enter(struct tracepoint__syscalls__sys_enter_futex *args) {
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return LK_TP_PASS_ON;
  u32 tid = (u32)id;
  struct lab_call c = {};
  c.uaddr = (u64)args->uaddr;
  c.is_wait = is_wait_op((u32)args->op);
  c.caller = entry_stack_word();
  c.stackid = lk_user_stack_syscall();
  if (c.stackid < 0)
    lost.atomic_increment(LAB_LOST_STACK);
  c.start_ns = bpf_ktime_get_ns();  /* last: the probe's own work is not part of the call */
  if (calls.update(&tid, &c) != 0)
    lost.atomic_increment(LAB_LOST_CALL);
  return LK_TP_PASS_ON;
}

/* A context switch: the thread leaving the CPU (prev) and the one getting it (next) may each be
 * inside a futex call. */
int on_switch(struct tracepoint__sched__sched_switch *args) {
  u64 now = bpf_ktime_get_ns();
  u32 prev = args->prev_pid, next = args->next_pid;
  struct lab_call *out = 0, *in = 0;
  if (prev != 0)
    out = calls.lookup(&prev);
  if (next != 0)
    in = calls.lookup(&next);

  // BEGIN TODO 1: the state machine on a context switch
  // HINT: `out` is the call of the thread switched out (NULL when it is in no futex call), `in`
  // HINT: the call of the thread switched in. A thread that leaves the CPU asleep has
  // HINT: args->prev_state & STATE_MASK non-zero: it starts a blocked interval (count it in
  // HINT: `blocks`, remember `now` in off_ns). Otherwise it was preempted while runnable: count
  // HINT: that in `preempts`; that time is not blocked. When a thread whose off_ns is set gets the
  // HINT: CPU back, its blocked interval ends: add it to blocked_ns and clear off_ns.
  // STUB: LAB_TODO(1);
  if (out) {
    if (args->prev_state & STATE_MASK) {
      if (out->off_ns == 0) {
        out->off_ns = now;
        out->blocks += 1;
      }
    } else {
      out->preempts += 1;
    }
  }
  if (in && in->off_ns) {
    in->blocked_ns += now - in->off_ns;
    in->off_ns = 0;
  }
  // END TODO 1
  return LK_TP_PASS_ON;
}

int futex_exit(struct tracepoint__syscalls__sys_exit_futex *args) {
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return LK_TP_PASS_ON;
  u64 now = bpf_ktime_get_ns();
  u32 tid = (u32)id;
  struct lab_call *cp = calls.lookup(&tid);
  if (!cp)
    return LK_TP_PASS_ON;  /* entered before tracing started */
  struct lab_call c = *cp;
  calls.delete(&tid);
  long ret = args->ret;

  struct lab_row_key k = {};
  k.uaddr = c.uaddr;
  k.caller = c.caller;
  k.pid = id >> 32;
  k.tid = tid;
  k.stackid = c.stackid;
  struct lab_row *row = rows.lookup(&k);
  if (!row) {
    struct lab_row zero = {};
    bpf_get_current_comm(&zero.comm, sizeof(zero.comm));
    row = rows.lookup_or_try_init(&k, &zero);
  }
  if (!row) {
    lost.atomic_increment(LAB_LOST_ROW);
    return LK_TP_PASS_ON;
  }

  // BEGIN TODO 2: blocked and sys time of the finished call, and its row
  // HINT: The call lasted now - c.start_ns. For a wait operation, blocked is c.blocked_ns (the
  // HINT: intervals on_switch closed) and sys the rest; a wake operation never counts as blocked.
  // HINT: Then add to `row`: blocked_ns and sys_ns, the maxima, wait_count or wake_count, one
  // HINT: blocked_count for a wait that slept (c.blocks > 0), one error when ret < 0, one
  // HINT: preempted when c.preempts > 0. Other CPUs may update the same row: __sync_fetch_and_add
  // HINT: for the sums (a racy maximum is good enough here).
  // STUB: LAB_TODO(2);
  u64 total = now > c.start_ns ? now - c.start_ns : 0;
  u64 blocked = c.is_wait ? c.blocked_ns : 0;
  if (blocked > total)
    blocked = total;
  u64 sys = total - blocked;
  __sync_fetch_and_add(&row->blocked_ns, blocked);
  __sync_fetch_and_add(&row->sys_ns, sys);
  if (blocked > row->max_blocked_ns)
    row->max_blocked_ns = blocked;
  if (sys > row->max_sys_ns)
    row->max_sys_ns = sys;
  if (c.is_wait) {
    __sync_fetch_and_add(&row->wait_count, 1);
    if (c.blocks > 0)
      __sync_fetch_and_add(&row->blocked_count, 1);
  } else {
    __sync_fetch_and_add(&row->wake_count, 1);
  }
  if (ret < 0)
    __sync_fetch_and_add(&row->errors, 1);
  if (c.preempts > 0)
    __sync_fetch_and_add(&row->preempted, 1);
  // END TODO 2
  return LK_TP_PASS_ON;
}
