/* lockstat: pthread lock wait and hold times from uprobes.
 *
 * Configuration comes as -D flags: TARGET_PID (tgid), SAMPLE_PER_10K (10000 = every acquisition),
 * MAX_STATS, MAX_THREADS, MAX_HELD, MAX_HISTS, MAX_LOCKS, MAX_DROPS, MAX_ORDER_EDGES, and the stack maps' STACK_ENTRIES,
 * UNWIND_ROWS, UNWIND_MAPS; LK_SEM_FUTEX_TP=1 when semaphores are traced and the sys_exit_futex
 * tracepoint exists; LOCK_ORDER defined for --lock-order. The `drops`
 * array (one counter per enum lk_drop) and count_drop() come from common.h. */
#include <uapi/linux/ptrace.h>
#ifndef LOCKKIT_EMBEDDED
#include "lockstat.h"
#endif

#define LK_EOWNERDEAD 130
#define LK_ETIMEDOUT 110
#define LK_EBUSY 16
#define LK_EAGAIN 11

BPF_HASH(stats, struct lk_stat_key, struct lk_stat_val, MAX_STATS);
BPF_HASH(pending, u32, struct lk_pending, MAX_THREADS);
BPF_HASH(held, struct lk_held_key, struct lk_held, MAX_HELD);
BPF_HASH(hists, struct lk_hist_key, u64, MAX_HISTS);
BPF_HASH(inits, u64, struct lk_init, MAX_LOCKS);
BPF_HASH(condwaits, u32, u64, MAX_THREADS);
_Static_assert(MAX_DROPS == LK_DROP_MAX, "the drops array holds one counter per drop reason");
/* Set to 1 by user space once every probe is attached. Until then no acquisition is recorded:
 * probes attach one by one while the target runs, and an acquisition seen before the unlock probe
 * exists would never see its release (its nesting depth would only grow). */
BPF_ARRAY(armed, u32, 1);

static __always_inline u32 current_tid(void) { return (u32)bpf_get_current_pid_tgid(); }

/* At function entry the return address into the caller sits at the stack pointer (a stack whose
 * first frame was unwound by its frame pointer skips it; user space puts it back). */
static __always_inline u64 entry_caller(struct pt_regs *ctx) {
  u64 ret = 0;
  bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
  return ret;
}

static __always_inline int user_stack(struct pt_regs *ctx) {
  int id = lk_user_stack(ctx);
  if (id < 0)
    count_drop(LK_DROP_STACK_LOST);
  return id;
}

static __always_inline void hist_add(u64 lock, u32 tid, u16 which, u64 ns) {
  struct lk_hist_key k = {};
  k.lock = lock;
  k.tid = tid;
  k.which = which;
  k.slot = lk_log2_slot(ns / 1000);
  u64 zero = 0;
  if (lk_add(hists.lookup_or_try_init(&k, &zero), 1) != 0)
    count_drop(LK_DROP_HIST_FULL);
}

static __always_inline struct lk_stat_val *stat_row(struct lk_stat_key *k) {
  struct lk_stat_val zero = {};
  zero.wait_min = ~0ULL;
  zero.hold_min = ~0ULL;
  return lk_or_drop(stats.lookup_or_try_init(k, &zero), LK_DROP_STATS_FULL);
}

/* ---- --lock-order (built with -DLOCK_ORDER) ----
 * Per thread, the locks it holds (order_held, at most LK_ORDER_HELD); before each blocking
 * acquisition of B, one edge A -> B for every lock A it holds, kept the first time it is seen
 * (order_edges). Trylocks add no edge (they never wait), a re-lock of a lock the thread already
 * holds adds none (a recursive mutex, a second read lock: it waits for nobody), and neither does a
 * read lock taken while another lock is held for reading (readers do not exclude each other). */
#ifdef LOCK_ORDER
#define LK_EEXIST 17
BPF_HASH(order_held, u32, struct lk_order_held, MAX_THREADS);
BPF_HASH(order_edges, struct lk_order_key, struct lk_order_edge, MAX_ORDER_EDGES);
BPF_PERCPU_ARRAY(order_scratch, struct lk_order_held, 1);

static __always_inline void order_before_block(u32 tid, const struct lk_pending *p) {
  struct lk_order_held *h = order_held.lookup(&tid);
  if (!h)
    return;
  u32 n = h->n;
  for (u32 i = 0; i < LK_ORDER_HELD; i++) {
    if (i >= n)
      break;
    if (h->locks[i] == p->lock)
      return;
  }
  for (u32 i = 0; i < LK_ORDER_HELD; i++) {
    if (i >= n)
      break;
    u32 from_mode = (h->shared >> i) & 1 ? LK_SHARED : LK_EXCLUSIVE;
    if (from_mode == LK_SHARED && p->mode == LK_SHARED)
      continue;
    struct lk_order_key k = {};
    k.from = h->locks[i];
    k.to = p->lock;
    k.from_mode = from_mode;
    k.to_mode = p->mode;
    k.pid = bpf_get_current_pid_tgid() >> 32;
    if (order_edges.lookup(&k))
      continue;
    struct lk_order_edge e = {};
    e.from_caller = h->callers[i];
    e.to_caller = p->caller;
    e.from_stackid = h->stackids[i];
    e.to_stackid = p->stackid;
    e.tid = tid;
    e.from_kind = (h->kinds >> (2 * i)) & 3;
    e.to_kind = p->kind;
    int rc = order_edges.insert(&k, &e);
    if (rc != 0 && rc != -LK_EEXIST)
      count_drop(LK_DROP_ORDER_EDGES_FULL);
  }
}

/* A new outermost hold (not a re-lock): the thread now holds p->lock. */
static __always_inline void order_acquired(u32 tid, const struct lk_pending *p) {
  struct lk_order_held *h = order_held.lookup(&tid);
  if (!h) {
    int zero = 0;
    struct lk_order_held *s = order_scratch.lookup(&zero);
    if (!s)
      return;
    s->locks[0] = p->lock;
    s->callers[0] = p->caller;
    s->stackids[0] = p->stackid;
    s->kinds = p->kind & 3;
    s->shared = p->mode == LK_SHARED;
    s->n = 1;
    if (order_held.update(&tid, s) != 0)
      count_drop(LK_DROP_ORDER_THREADS_FULL);
    return;
  }
  u32 n = h->n;
  if (n >= LK_ORDER_HELD) {
    count_drop(LK_DROP_ORDER_HELD_FULL);
    return;
  }
  h->locks[n] = p->lock;
  h->callers[n] = p->caller;
  h->stackids[n] = p->stackid;
  h->kinds = (h->kinds & ~(3u << (2 * n))) | ((p->kind & 3) << (2 * n));
  h->shared = (h->shared & ~(1u << n)) | ((u32)(p->mode == LK_SHARED) << n);
  h->n = n + 1;
}

/* The outermost hold of `lock` ended. */
static __always_inline void order_released(u32 tid, u64 lock) {
  struct lk_order_held *h = order_held.lookup(&tid);
  if (!h)
    return;
  u32 n = h->n;
  for (u32 i = 0; i < LK_ORDER_HELD; i++) {
    if (i >= n)
      break;
    if (h->locks[i] != lock)
      continue;
    u32 last = (n - 1) & (LK_ORDER_HELD - 1);
    h->locks[i] = h->locks[last];
    h->callers[i] = h->callers[last];
    h->stackids[i] = h->stackids[last];
    u32 kind = (h->kinds >> (2 * last)) & 3;
    h->kinds = (h->kinds & ~(3u << (2 * i))) | (kind << (2 * i));
    u32 sh = (h->shared >> last) & 1;
    h->shared = (h->shared & ~(1u << i)) | (sh << i);
    if (last == 0)
      order_held.delete(&tid);
    else
      h->n = last;
    return;
  }
}
#else
static __always_inline void order_before_block(u32 tid, const struct lk_pending *p) {}
static __always_inline void order_acquired(u32 tid, const struct lk_pending *p) {}
static __always_inline void order_released(u32 tid, u64 lock) {}
#endif

static __always_inline int on_init(struct pt_regs *ctx, u32 kind) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  u64 lock = PT_REGS_PARM1(ctx);
  struct lk_init in = {};
  in.caller = entry_caller(ctx);
  in.stackid = user_stack(ctx);
  in.tid = current_tid();
  in.kind = kind;
  if (inits.update(&lock, &in) != 0)
    count_drop(LK_DROP_INIT_FULL);
  return 0;
}

/* Every init site; its kind is in the attach cookie (LK_SITE_COOKIE). */
int init_site_enter(struct pt_regs *ctx) { return on_init(ctx, LK_SITE_KIND(bpf_get_attach_cookie(ctx))); }

static __always_inline int lock_enter(struct pt_regs *ctx, u32 kind, u32 mode, u32 op) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  int zero = 0;
  u32 *on = armed.lookup(&zero);
  if (!on || !*on)
    return 0;
  u32 tid = current_tid();
  struct lk_pending p = {};
  p.lock = PT_REGS_PARM1(ctx);
  if (SAMPLE_PER_10K < 10000) {
    /* Decide once per outermost acquisition; nested re-locks of a sampled lock follow it. A
     * semaphore acquisition never nests (see sem_return): each one is decided alone. */
    struct lk_held_key hk = {};
    hk.lock = p.lock;
    hk.tid = tid;
    if ((kind == LK_SEM || !held.lookup(&hk)) && bpf_get_prandom_u32() % 10000 >= SAMPLE_PER_10K)
      return 0;
  }
  p.caller = entry_caller(ctx);
  p.stackid = user_stack(ctx);
  p.kind = kind;
  p.mode = mode;
  p.op = op;
  if (op != LK_OP_TRY && kind != LK_SEM) /* a semaphore has no owner: no lock order */
    order_before_block(tid, &p);
  p.ts = bpf_ktime_get_ns(); /* last, so that the probe's own work is not counted as waiting */
  if (pending.update(&tid, &p) != 0)
    count_drop(LK_DROP_PENDING_FULL);
  return 0;
}

/* Every acquisition site (mutex, rwlock, spin lock and semaphore calls, plain, try and timed):
 * kind, mode and operation are in the attach cookie (LK_SITE_COOKIE). One program for all of them,
 * rather than one per site, because a program that walks stacks takes the verifier a while to
 * load. */
int lock_site_enter(struct pt_regs *ctx) {
  u64 c = bpf_get_attach_cookie(ctx);
  return lock_enter(ctx, LK_SITE_KIND(c), LK_SITE_MODE(c), LK_SITE_OP(c));
}

int lock_return(struct pt_regs *ctx) {
  u64 now = bpf_ktime_get_ns();
  u32 tid = current_tid();
  struct lk_pending *pp = pending.lookup(&tid);
  if (!pp)
    return 0;
  struct lk_pending p = *pp;
  pending.delete(&tid);

  int rc = (int)PT_REGS_RC(ctx);
  int acquired = rc == 0 || (p.kind == LK_MUTEX && rc == LK_EOWNERDEAD);
  u64 wait = now - p.ts;

  struct lk_stat_key k = {};
  k.pid = bpf_get_current_pid_tgid() >> 32;
  k.lock = p.lock;
  k.caller = p.caller;
  k.tid = tid;
  k.stackid = p.stackid;
  k.kind = p.kind;
  k.mode = p.mode;
  struct lk_stat_val *v = stat_row(&k);

  if (!acquired) {
    if (!v)
      return 0;
    if (p.op == LK_OP_TRY && rc == LK_EBUSY) {
      __sync_fetch_and_add(&v->failed_trylocks, 1);
    } else if (p.op == LK_OP_TIMED && rc == LK_ETIMEDOUT) {
      /* The thread really waited, it just gave up: the wait counts, the acquisition does not. */
      __sync_fetch_and_add(&v->timeouts, 1);
      __sync_fetch_and_add(&v->wait_ns, wait);
      if (wait > v->wait_max)
        v->wait_max = wait;
      hist_add(p.lock, tid, LK_WAIT, wait);
    } else {
      __sync_fetch_and_add(&v->errors, 1);
    }
    return 0;
  }

  struct lk_held_key hk = {};
  hk.lock = p.lock;
  hk.tid = tid;
  struct lk_held *h = held.lookup(&hk);
  if (h) {
    h->depth += 1; /* recursive mutex or a second read lock: the outermost hold continues */
  } else {
    struct lk_held nh = {};
    nh.acquired = now;
    nh.caller = p.caller;
    nh.stackid = p.stackid;
    nh.kind = p.kind;
    nh.mode = p.mode;
    nh.depth = 1;
    if (held.update(&hk, &nh) != 0)
      count_drop(LK_DROP_HELD_FULL);
    else
      order_acquired(tid, &p);
  }
  if (!v)
    return 0;
  __sync_fetch_and_add(&v->acquisitions, 1);
  __sync_fetch_and_add(&v->wait_ns, wait);
  if (wait < v->wait_min)
    v->wait_min = wait;
  if (wait > v->wait_max)
    v->wait_max = wait;
  hist_add(p.lock, tid, LK_WAIT, wait);
  return 0;
}

int unlock_enter(struct pt_regs *ctx) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  u64 now = bpf_ktime_get_ns();
  struct lk_held_key hk = {};
  hk.lock = PT_REGS_PARM1(ctx);
  hk.tid = current_tid();
  struct lk_held *h = held.lookup(&hk);
  if (!h)
    return 0;
  if (h->depth > 1) {
    h->depth -= 1;
    return 0;
  }
  u64 elapsed = now - h->acquired;
  u64 hold = elapsed > h->paused_ns ? elapsed - h->paused_ns : 0;
  struct lk_stat_key k = {};
  k.pid = bpf_get_current_pid_tgid() >> 32;
  k.lock = hk.lock;
  k.caller = h->caller;
  k.tid = hk.tid;
  k.stackid = h->stackid;
  k.kind = h->kind;
  k.mode = h->mode;
  held.delete(&hk);
  order_released(hk.tid, hk.lock);
  struct lk_stat_val *v = stat_row(&k);
  if (!v)
    return 0;
  __sync_fetch_and_add(&v->holds, 1);
  __sync_fetch_and_add(&v->hold_ns, hold);
  if (hold < v->hold_min)
    v->hold_min = hold;
  if (hold > v->hold_max)
    v->hold_max = hold;
  hist_add(hk.lock, hk.tid, LK_HOLD, hold);
  return 0;
}

/* pthread_cond_wait(cond, mutex) releases the mutex inside and takes it back before returning,
 * without going through the exported lock functions: pause the hold instead. */
int cond_wait_enter(struct pt_regs *ctx) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  u32 tid = current_tid();
  u64 mutex = PT_REGS_PARM2(ctx);
  struct lk_held_key hk = {};
  hk.lock = mutex;
  hk.tid = tid;
  struct lk_held *h = held.lookup(&hk);
  if (!h)
    return 0;
  h->pause_start = bpf_ktime_get_ns();
  if (condwaits.update(&tid, &mutex) != 0)
    count_drop(LK_DROP_COND_FULL);
  return 0;
}

int cond_wait_return(struct pt_regs *ctx) {
  u64 now = bpf_ktime_get_ns();
  u32 tid = current_tid();
  u64 *mp = condwaits.lookup(&tid);
  if (!mp)
    return 0;
  struct lk_held_key hk = {};
  hk.lock = *mp;
  hk.tid = tid;
  condwaits.delete(&tid);
  struct lk_held *h = held.lookup(&hk);
  if (!h || h->pause_start == 0)
    return 0;
  u64 paused = now - h->pause_start;
  h->paused_ns += paused;
  h->pause_start = 0;
  struct lk_stat_key k = {};
  k.pid = bpf_get_current_pid_tgid() >> 32;
  k.lock = hk.lock;
  k.caller = h->caller;
  k.tid = tid;
  k.stackid = h->stackid;
  k.kind = h->kind;
  k.mode = h->mode;
  struct lk_stat_val *v = stat_row(&k);
  if (!v)
    return 0;
  __sync_fetch_and_add(&v->cond_waits, 1);
  __sync_fetch_and_add(&v->cond_wait_ns, paused);
  return 0;
}


/* ---- POSIX semaphores (kind LK_SEM) ----
 *
 * sem_wait, sem_trywait, sem_timedwait and sem_clockwait go through lock_enter and sem_return;
 * sem_post closes a hold or counts a handoff; sem_init names the semaphore and starts a new life
 * for its address. A thread has at most one acquisition of a given semaphore open: the hold runs
 * from the acquisition to the same thread's next sem_post on it. An acquisition that its thread
 * does not post back before it acquires the semaphore again (a consumer fed by another thread's
 * posts, CPython's lock used as a signal) is counted as `unreleased` when that next acquisition
 * comes, never timed; so is one still open when the semaphore is initialised again (its address
 * reused) and, in user space, one still open when tracing ends. A post by a thread with nothing
 * open is a `handoff`, on the poster's row with the sem_post stack.
 *
 * The calls return -1 with errno, which BPF cannot read. A sem_trywait that fails has found no
 * token (EAGAIN); for the timed calls, the result of the thread's last futex system call inside
 * the sem call tells ETIMEDOUT from an interruption (glibc returns -1 right after a futex wait
 * that timed out or was interrupted, and retries after any other result). */
BPF_HASH(sem_inits, u64, u64, MAX_LOCKS); /* semaphore -> time of its last sem_init */

static __always_inline struct lk_stat_val *held_row(struct lk_held *h, u64 lock, u32 tid) {
  struct lk_stat_key k = {};
  k.pid = bpf_get_current_pid_tgid() >> 32;
  k.lock = lock;
  k.caller = h->caller;
  k.tid = tid;
  k.stackid = h->stackid;
  k.kind = h->kind;
  k.mode = h->mode;
  return stat_row(&k);
}

/* An open acquisition that will never be posted back by its thread. */
static __always_inline void sem_unreleased(struct lk_held *h, u64 lock, u32 tid) {
  struct lk_stat_val *v = held_row(h, lock, tid);
  if (v)
    __sync_fetch_and_add(&v->unreleased, 1);
}

int sem_init_enter(struct pt_regs *ctx) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  u64 sem = PT_REGS_PARM1(ctx);
  u64 now = bpf_ktime_get_ns();
  if (sem_inits.update(&sem, &now) != 0)
    count_drop(LK_DROP_INIT_FULL);
  return on_init(ctx, LK_SEM);
}

/* sem_wait, sem_trywait, sem_timedwait and sem_clockwait enter through lock_site_enter (kind LK_SEM
 * in the cookie) and return through sem_return. */

#if LK_SEM_FUTEX_TP
/* A futex call returning inside a traced sem call: keep its result (see above). */
int sem_futex_exit(struct tracepoint__syscalls__sys_exit_futex *args) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return LK_TP_PASS_ON;
  u32 tid = current_tid();
  struct lk_pending *pp = pending.lookup(&tid);
  if (pp && pp->kind == LK_SEM)
    pp->futex_ret = (s32)args->ret;
  return LK_TP_PASS_ON;
}
#endif

int sem_return(struct pt_regs *ctx) {
  u64 now = bpf_ktime_get_ns();
  u32 tid = current_tid();
  struct lk_pending *pp = pending.lookup(&tid);
  if (!pp)
    return 0;
  struct lk_pending p = *pp;
  pending.delete(&tid);
  if (p.kind != LK_SEM)
    return 0;

  int rc = (int)PT_REGS_RC(ctx);
  u64 wait = now - p.ts;
  struct lk_stat_key k = {};
  k.pid = bpf_get_current_pid_tgid() >> 32;
  k.lock = p.lock;
  k.caller = p.caller;
  k.tid = tid;
  k.stackid = p.stackid;
  k.kind = LK_SEM;
  k.mode = p.mode;
  struct lk_stat_val *v = stat_row(&k);

  if (rc != 0) {
    if (!v)
      return 0;
    if (p.op == LK_OP_TRY) {
      __sync_fetch_and_add(&v->failed_trylocks, 1); /* no token: EAGAIN */
    } else if (p.op == LK_OP_TIMED && p.futex_ret == -LK_ETIMEDOUT) {
      __sync_fetch_and_add(&v->timeouts, 1);
      __sync_fetch_and_add(&v->wait_ns, wait);
      if (wait > v->wait_max)
        v->wait_max = wait;
      hist_add(p.lock, tid, LK_WAIT, wait);
    } else {
      __sync_fetch_and_add(&v->errors, 1); /* interrupted (EINTR), EINVAL */
    }
    return 0;
  }

  struct lk_held_key hk = {};
  hk.lock = p.lock;
  hk.tid = tid;
  struct lk_held *h = held.lookup(&hk);
  if (h)
    sem_unreleased(h, p.lock, tid); /* acquired again before posting the previous one back */
  struct lk_held nh = {};
  nh.acquired = now;
  nh.caller = p.caller;
  nh.stackid = p.stackid;
  nh.kind = LK_SEM;
  nh.mode = p.mode;
  nh.depth = 1;
  if (held.update(&hk, &nh) != 0)
    count_drop(LK_DROP_HELD_FULL);
  if (!v)
    return 0;
  __sync_fetch_and_add(&v->acquisitions, 1);
  __sync_fetch_and_add(&v->wait_ns, wait);
  if (wait < v->wait_min)
    v->wait_min = wait;
  if (wait > v->wait_max)
    v->wait_max = wait;
  hist_add(p.lock, tid, LK_WAIT, wait);
  return 0;
}

int sem_post_enter(struct pt_regs *ctx) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  int zero = 0;
  u32 *on = armed.lookup(&zero);
  if (!on || !*on)
    return 0;
  u64 now = bpf_ktime_get_ns();
  struct lk_held_key hk = {};
  hk.lock = PT_REGS_PARM1(ctx);
  hk.tid = current_tid();
  struct lk_held *h = held.lookup(&hk);
  if (h) {
    u64 *init = sem_inits.lookup(&hk.lock);
    if (!init || *init <= h->acquired) {
      u64 hold = now - h->acquired;
      struct lk_stat_val *v = held_row(h, hk.lock, hk.tid);
      held.delete(&hk);
      if (!v)
        return 0;
      __sync_fetch_and_add(&v->holds, 1);
      __sync_fetch_and_add(&v->hold_ns, hold);
      if (hold < v->hold_min)
        v->hold_min = hold;
      if (hold > v->hold_max)
        v->hold_max = hold;
      hist_add(hk.lock, hk.tid, LK_HOLD, hold);
      return 0;
    }
    /* Acquired before the semaphore was initialised again: that acquisition is over. */
    sem_unreleased(h, hk.lock, hk.tid);
    held.delete(&hk);
  }
  /* With --sample, the post of an acquisition that was not sampled finds nothing open either:
   * handoffs cannot be told apart, so they are not counted. */
  if (SAMPLE_PER_10K < 10000)
    return 0;
  struct lk_stat_key k = {};
  k.pid = bpf_get_current_pid_tgid() >> 32;
  k.lock = hk.lock;
  k.caller = entry_caller(ctx);
  k.tid = hk.tid;
  k.stackid = user_stack(ctx);
  k.kind = LK_SEM;
  k.mode = LK_EXCLUSIVE;
  struct lk_stat_val *v = stat_row(&k);
  if (v)
    __sync_fetch_and_add(&v->handoffs, 1);
  return 0;
}
