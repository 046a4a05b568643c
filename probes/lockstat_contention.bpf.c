/* lockstat --mode contention: contended waits from the futex system calls, with the holder.
 *
 * sys_enter: a wait records the word, the time and the u32 at word + 8 (a glibc mutex's __owner,
 * the holder's tid); a wake records nothing. sys_exit: a wait that slept becomes a contention row
 * (waiter, holder, waiting stack); one that returned EAGAIN at once is only counted; a wake that
 * woke someone becomes a release row (waker, its stack), its word read from the registers. Stacks are taken at the exit, only for the
 * calls that are kept (the user registers are those of the syscall either way). Init-function
 * uprobes (pthread_mutex_init, ...) record which objects exist, for names and kinds.
 *
 * Configuration comes as -D flags: TARGET_PID (tgid), SELF_PID, HAVE_FUTEX2, HAVE_FUTEX_WAITV,
 * NR_FUTEX and NR_FUTEX_WAKE (the system call numbers, -1 when the kernel has no futex_wake),
 * MAX_CALLS, MAX_WAITS, MAX_RETRIES, MAX_RELEASES, MAX_LOCKS, MAX_DROPS, and the stack maps' STACK_ENTRIES, UNWIND_ROWS,
 * UNWIND_MAPS. The `drops` array, count_drop(), the stack helpers and lk_traced() come from
 * common.h. */
#include <uapi/linux/ptrace.h>
#ifndef LOCKKIT_EMBEDDED
#include "lockstat_contention.h"
#endif

#define LC_EAGAIN 11
#define LC_ETIMEDOUT 110

BPF_HASH(calls, u32, struct lc_call, MAX_CALLS);
BPF_HASH(waits, struct lc_wait_key, struct lc_wait_val, MAX_WAITS);
BPF_HASH(retries, struct lc_retry_key, u64, MAX_RETRIES);
BPF_HASH(releases, struct lc_release_key, struct lc_release_val, MAX_RELEASES);
BPF_HASH(inits, struct lc_init_key, struct lc_init, MAX_LOCKS);
_Static_assert(MAX_DROPS == LC_DROP_MAX, "the drops array holds one counter per drop reason");

/* The user stack where the thread entered the system call (at a futex tracepoint)... */
static __always_inline int syscall_stack(void) {
  int id = lk_user_stack_syscall();
  if (id < 0)
    count_drop(LC_DROP_STACK_LOST);
  return id;
}

/* ...or at a uprobe. */
static __always_inline int user_stack(struct pt_regs *ctx) {
  int id = lk_user_stack(ctx);
  if (id < 0)
    count_drop(LC_DROP_STACK_LOST);
  return id;
}

/* Waits only: a wake needs nothing from its entry (its exit reads the word from the registers). */
static __always_inline void on_enter(u32 cmd, u64 uaddr, u64 val) {
  if (lc_classify_cmd(cmd & LC_FUTEX_CMD_MASK) != LC_CLASS_WAIT)
    return;
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return;
  u32 tid = (u32)id;
  struct lc_call c = {};
  c.uaddr = uaddr;
  c.cls = LC_CLASS_WAIT;
  c.pid = id >> 32;
  c.hint = cmd & 0xff;
  if ((u32)val == 2)
    c.hint |= LC_HINT_VAL2;
  bpf_probe_read_user(&c.owner, sizeof(c.owner), (void *)(uaddr + 8));
  c.start_ns = bpf_ktime_get_ns(); /* last, so that the probe's own work is not counted */
  if (calls.update(&tid, &c) != 0)
    count_drop(LC_DROP_CALLS_FULL);
}

/* A wake that woke someone (ret > 0): its word and command from the syscall's saved registers
 * (futex(2): uaddr in rdi, op in rsi; futex_wake(2): uaddr in rdi), which the kernel leaves as the
 * caller set them. */
static __always_inline void on_wake_exit(void *ctx, u64 id, s32 nr, s64 ret) {
  if (!lk_traced(id))
    return;
  u64 regs = bpf_task_pt_regs(bpf_get_current_task_btf());
  if (regs == 0)
    return;
  u64 di = 0, si = 0;
  bpf_probe_read_kernel(&di, sizeof(di), (void *)(regs + __builtin_offsetof(struct pt_regs, di)));
  u32 cmd;
  if (nr == NR_FUTEX) {
    bpf_probe_read_kernel(&si, sizeof(si), (void *)(regs + __builtin_offsetof(struct pt_regs, si)));
    cmd = (u32)si & 0xff;
    if (lc_classify_cmd(cmd & LC_FUTEX_CMD_MASK) != LC_CLASS_WAKE)
      return;
  } else if (nr == NR_FUTEX_WAKE) {
    cmd = LC_CMD_FUTEX2_WAKE;
  } else {
    return;
  }
  struct lc_release_key k = {};
  k.uaddr = di;
  k.caller = lk_syscall_sp_word();
  k.pid = id >> 32;
  k.tid = (u32)id;
  k.stackid = syscall_stack();
  k.hint = cmd;
  struct lc_release_val zero = {};
  struct lc_release_val *v = lk_or_drop(releases.lookup_or_try_init(&k, &zero), LC_DROP_RELEASES_FULL);
  if (v) {
    __sync_fetch_and_add(&v->wakes, 1);
    __sync_fetch_and_add(&v->woken, (u64)ret);
  }
}

static __always_inline void on_exit(void *ctx, s32 nr, s64 ret) {
  u64 now = bpf_ktime_get_ns();
  u64 id = bpf_get_current_pid_tgid();
  u32 tid = (u32)id;
  struct lc_call *cp = calls.lookup(&tid);
  if (!cp) {
    /* Not a wait we saw begin: a wake, a thread not traced, or a call from before tracing. */
    if (ret > 0)
      on_wake_exit(ctx, id, nr, ret);
    return;
  }
  struct lc_call c = *cp;
  calls.delete(&tid);

  if (ret == -LC_EAGAIN) {
    struct lc_retry_key k = {};
    k.uaddr = c.uaddr;
    k.pid = id >> 32;
    k.tid = tid;
    k.hint = c.hint;
    u64 zero = 0;
    if (lk_add(retries.lookup_or_try_init(&k, &zero), 1) != 0)
      count_drop(LC_DROP_RETRIES_FULL);
    return;
  }

  u64 wait = now > c.start_ns ? now - c.start_ns : 0;
  struct lc_wait_key k = {};
  k.uaddr = c.uaddr;
  k.caller = lk_syscall_sp_word();
  k.pid = id >> 32;
  k.tid = tid;
  k.holder = c.owner;
  k.stackid = syscall_stack();
  k.hint = c.hint;
  struct lc_wait_val zero = {};
  struct lc_wait_val *v = lk_or_drop(waits.lookup_or_try_init(&k, &zero), LC_DROP_WAITS_FULL);
  if (!v)
    return;
  __sync_fetch_and_add(&v->contentions, 1);
  __sync_fetch_and_add(&v->wait_ns, wait);
  if (wait > v->max_wait_ns)
    v->max_wait_ns = wait;
  if (ret == -LC_ETIMEDOUT)
    __sync_fetch_and_add(&v->timeouts, 1);
}

int futex_enter(struct tracepoint__syscalls__sys_enter_futex *args) {
  on_enter((u32)args->op, (u64)args->uaddr, (u64)args->val);
  return LK_TP_PASS_ON;
}

/* Every sys_exit_* tracepoint has the same layout (ret at offset 16): one program serves them all. */
int futex_exit(struct tracepoint__syscalls__sys_exit_futex *args) {
  on_exit(args, args->__syscall_nr, args->ret);
  return LK_TP_PASS_ON;
}

#if HAVE_FUTEX2
int futex_wait_enter(struct tracepoint__syscalls__sys_enter_futex_wait *args) {
  on_enter(LC_CMD_FUTEX2_WAIT, (u64)args->uaddr, (u64)args->val);
  return LK_TP_PASS_ON;
}

int futex_wake_enter(struct tracepoint__syscalls__sys_enter_futex_wake *args) {
  on_enter(LC_CMD_FUTEX2_WAKE, (u64)args->uaddr, 0);
  return LK_TP_PASS_ON;
}
#endif

#if HAVE_FUTEX_WAITV
/* struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 reserved; }: the first entry. */
int futex_waitv_enter(struct tracepoint__syscalls__sys_enter_futex_waitv *args) {
  u64 w[2] = {};
  if (args->nr_futexes > 0 && args->waiters)
    bpf_probe_read_user(w, sizeof(w), (void *)args->waiters);
  on_enter(LC_CMD_FUTEX2_WAITV, w[1], w[0]);
  return LK_TP_PASS_ON;
}
#endif

static __always_inline int on_init(struct pt_regs *ctx, u32 kind) {
  u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return 0;
  struct lc_init_key obj = {};
  obj.addr = PT_REGS_PARM1(ctx);
  obj.pid = id >> 32;
  struct lc_init in = {};
  u64 ret = 0;
  bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx)); /* the direct caller */
  in.caller = ret;
  in.stackid = user_stack(ctx);
  in.tid = (u32)id;
  in.kind = kind;
  if (inits.update(&obj, &in) != 0)
    count_drop(LC_DROP_INIT_FULL);
  return 0;
}

/* Every init site; its kind (enum lc_init_kind) is the attach cookie. One program for all of them
 * because a program that walks stacks takes the verifier a while to load. */
int init_site_enter(struct pt_regs *ctx) { return on_init(ctx, (u32)bpf_get_attach_cookie(ctx)); }
