/* mklockstat: time spent waiting for kernel locks, per thread and lock, in fixed periods.
 *
 * Each (thread, lock, type) has one open period in `periods`: its start (a multiple of PERIOD_NS on
 * the bpf_ktime_get_ns clock, so every thread shares one time grid), the number of waits that
 * ended in it and their sum. When a wait ends in a later period, the finished period is pushed to
 * user space through the `finished` perf buffer and a new one opens. User space takes periods left
 * open by idle threads from the map itself (lookup-and-delete), and all of them at exit. Whoever
 * deletes an entry first owns it, so a period reaches user space exactly once.
 *
 * The first kernel stack of each (thread, lock, type) is stored once, in `first_stack`; later
 * waits reuse its id, to keep the cost of a wait low.
 *
 * Configuration (-D): exactly one of MK_BACKEND_TRACEPOINT / MK_BACKEND_KPROBE; PERIOD_NS;
 * SELF_PID (the tool: never traced); TARGET_PID (tgid), TARGET_TID (0 = all), as lk_traced() in
 * common.h reads them; FILTER_COMMS (1 = skip threads whose comm is in `skip_comms`); MAX_PERIODS,
 * MAX_PENDING, MAX_FIRST, STACK_ENTRIES. */
#include <uapi/linux/ptrace.h>
#ifndef LOCKKIT_EMBEDDED
#include "mklockstat.h"
#endif

BPF_HASH(periods, struct mk_key, struct mk_period, MAX_PERIODS);
BPF_HASH(pending, struct mk_pending_key, struct mk_pending, MAX_PENDING);
BPF_HASH(first_stack, struct mk_first_key, s32, MAX_FIRST);
BPF_HASH(skip_comms, struct mk_comm, u8, 64);
BPF_ARRAY(counters, u64, MK_C_MAX);
BPF_PERF_OUTPUT(finished);

/* The idle task has tid 0 on every CPU at once: tell its CPUs apart. */
static __always_inline u32 cpu_of(u32 tid) { return tid == 0 ? bpf_get_smp_processor_id() : 0; }

static __always_inline int wanted(u64 id) {
  if (!lk_traced(id))
    return 0;
#if FILTER_COMMS
  struct mk_comm c = {};
  bpf_get_current_comm(&c.name, sizeof(c.name));
  if (skip_comms.lookup(&c))
    return 0;
#endif
  return 1;
}

/* The stack id of this thread's first wait for `lock` as `type`, taking the stack now if there is
 * none. */
static __always_inline s32 first_stack_id(void *ctx, u64 lock, u32 type, u32 tid, u32 cpu) {
  struct mk_first_key fk = {};
  fk.lock = lock;
  fk.tid = tid;
  fk.cpu = cpu;
  fk.type = type;
  s32 *have = first_stack.lookup(&fk);
  if (have)
    return *have;
  s32 id = lk_kernel_stack(ctx);
  if (id < 0)
    counters.atomic_increment(MK_C_STACK_LOST);
  if (first_stack.insert(&fk, &id) != 0)
    counters.atomic_increment(MK_C_FIRST_FULL);
  return id;
}

/* A wait for `lock` starts. `slot` keys the wait in flight next to the thread: the lock itself
 * (tracepoints: nested waits for other locks end on their own) or a class (kprobes: the return
 * does not know the lock). `keep_first`: a repeated start belongs to the wait already in flight
 * (a mutex fires contention_begin once to spin and once more to sleep). */
static __always_inline void wait_begin(void *ctx, u64 lock, u32 type, u64 slot, int keep_first) {
  u64 id = bpf_get_current_pid_tgid();
  if (!wanted(id))
    return;
  u32 tid = (u32)id;
  struct mk_pending_key pk = {};
  pk.lock = slot;
  pk.tid = tid;
  pk.cpu = cpu_of(tid);
  if (keep_first && pending.lookup(&pk))
    return;
  struct mk_pending p = {};
  p.lock = lock;
  p.type = type;
  p.stackid = first_stack_id(ctx, lock, type, tid, pk.cpu);
  p.start = bpf_ktime_get_ns(); /* last: the probe's own work is not waiting */
  if (pending.update(&pk, &p) != 0)
    counters.atomic_increment(MK_C_PENDING_FULL);
}

static __always_inline void wait_end(void *ctx, u64 slot, int failed) {
  u64 now = bpf_ktime_get_ns();
  u64 id = bpf_get_current_pid_tgid();
  u32 tid = (u32)id;
  struct mk_pending_key pk = {};
  pk.lock = slot;
  pk.tid = tid;
  pk.cpu = cpu_of(tid);
  struct mk_pending *pp = pending.lookup(&pk);
  if (!pp)
    return;
  struct mk_pending p = *pp;
  pending.delete(&pk);
  counters.atomic_increment(MK_C_WAITS);
  if (failed)
    counters.atomic_increment(MK_C_FAILED);
  u64 wait = now > p.start ? now - p.start : 0;

  struct mk_key k = {};
  k.lock = p.lock;
  k.pid = id >> 32;
  k.tid = tid;
  k.cpu = pk.cpu;
  k.type = p.type;
  struct mk_period *v = periods.lookup(&k);
  if (v) {
    /* Only this thread (for tid 0: this CPU) writes its entries, so the in-place update is safe. */
    if (mk_period_add(v, now, wait, PERIOD_NS))
      return;
    /* The open period is finished: push it out, unless user space took it meanwhile. */
    struct mk_sample s = {};
    s.key = k;
    s.val = *v;
    if (periods.delete(&k) == 0) {
      if (finished.perf_submit(ctx, &s, sizeof(s)) != 0)
        counters.atomic_increment(MK_C_OUTPUT_FAILED);
      else
        counters.atomic_increment(MK_C_ROLLOVERS);
    }
  }
  struct mk_period n = {};
  mk_period_open(&n, now, wait, PERIOD_NS, p.stackid);
  bpf_get_current_comm(&n.comm, sizeof(n.comm));
  if (periods.update(&k, &n) != 0)
    counters.atomic_increment(MK_C_PERIODS_FULL);
}

#ifdef MK_BACKEND_TRACEPOINT
/* Contended acquisitions only. A mutex may begin twice (spin, then sleep) before its end. */
TRACEPOINT_PROBE(lock, contention_begin) {
  u64 lock = (u64)args->lock_addr;
  wait_begin(args, lock, mk_type_from_flags(args->flags), lock, 1);
  return LK_TP_PASS_ON;
}

TRACEPOINT_PROBE(lock, contention_end) {
  wait_end(args, (u64)args->lock_addr, args->ret != 0);
  return LK_TP_PASS_ON;
}
#endif

#ifdef MK_BACKEND_KPROBE
/* Every acquisition: entry keeps the lock pointer keyed by thread (the argument register is
 * clobbered at return), the return closes the wait. Sleeping locks and rwlock_t use separate slots,
 * since an interrupt may take a rwlock_t while its thread waits for a sleeping lock. */
#define MK_SLOT_SLEEPING 0
#define MK_SLOT_RWLOCK 1

static __always_inline int enter(struct pt_regs *ctx, u32 type, u64 slot) {
  wait_begin(ctx, PT_REGS_PARM1(ctx), type, slot, 0);
  return 0;
}

int mutex_enter(struct pt_regs *ctx) { return enter(ctx, MK_T_MUTEX, MK_SLOT_SLEEPING); }
int sem_enter(struct pt_regs *ctx) { return enter(ctx, MK_T_SEM, MK_SLOT_SLEEPING); }
int rwsem_read_enter(struct pt_regs *ctx) { return enter(ctx, MK_T_SEM_R, MK_SLOT_SLEEPING); }
int rwsem_write_enter(struct pt_regs *ctx) { return enter(ctx, MK_T_SEM_W, MK_SLOT_SLEEPING); }
int rwlock_read_enter(struct pt_regs *ctx) { return enter(ctx, MK_T_RWLOCK_R, MK_SLOT_RWLOCK); }
int rwlock_write_enter(struct pt_regs *ctx) { return enter(ctx, MK_T_RWLOCK_W, MK_SLOT_RWLOCK); }

/* void mutex_lock(), down_read(), ...: always acquired. */
int sleeping_return_void(struct pt_regs *ctx) {
  wait_end(ctx, MK_SLOT_SLEEPING, 0);
  return 0;
}

/* int mutex_lock_interruptible(), down_read_killable(), ...: 0 when acquired. */
int sleeping_return_int(struct pt_regs *ctx) {
  wait_end(ctx, MK_SLOT_SLEEPING, (int)PT_REGS_RC(ctx) != 0);
  return 0;
}

int rwlock_return(struct pt_regs *ctx) {
  wait_end(ctx, MK_SLOT_RWLOCK, 0);
  return 0;
}
#endif
