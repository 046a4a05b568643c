/* The lab lockstat's BPF side: uprobes on pthread_mutex_init, pthread_mutex_lock (entry and
 * return) and pthread_mutex_unlock. -D flags: TARGET_PID, STACK_ENTRIES, UNWIND_ROWS,
 * UNWIND_MAPS, MAX_ROWS, MAX_THREADS. */
#include <uapi/linux/ptrace.h>

BPF_HASH(stats, struct lab_key, struct lab_stat, MAX_ROWS);
BPF_HASH(hold_hist, struct lab_hist_key, u64, MAX_ROWS * 8);
BPF_HASH(inits, u64, struct lab_init, MAX_ROWS);
BPF_HASH(pending, u32, struct lab_pending, MAX_THREADS);
BPF_HASH(held, struct lab_held_key, struct lab_held, MAX_THREADS * 4);
BPF_ARRAY(lost, u64, LAB_LOST_MAX);

static __always_inline u32 current_tid(void) { return (u32)bpf_get_current_pid_tgid(); }

/* At a function's entry the frame-pointer walk starts in the caller's frame and misses the
 * caller itself; the return address into it is the word at the stack pointer. */
static __always_inline u64 entry_caller(struct pt_regs *ctx) {
  u64 ret = 0;
  bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
  return ret;
}

static __always_inline int stack_of(struct pt_regs *ctx) {
  int id = lk_user_stack(ctx);
  if (id < 0)
    lost.atomic_increment(LAB_LOST_STACK);
  return id;
}

int init_enter(struct pt_regs *ctx) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  u64 lock = PT_REGS_PARM1(ctx);
  struct lab_init in = {};
  in.caller = entry_caller(ctx);
  in.stackid = stack_of(ctx);
  in.tid = current_tid();
  if (inits.update(&lock, &in) != 0)
    lost.atomic_increment(LAB_LOST_TABLE);
  return 0;
}

int lock_enter(struct pt_regs *ctx) {
  if (!lk_traced(bpf_get_current_pid_tgid()))
    return 0;
  u32 tid = current_tid();
  struct lab_pending p = {};
  p.lock = PT_REGS_PARM1(ctx);
  p.caller = entry_caller(ctx);
  p.stackid = stack_of(ctx);
  p.ts = bpf_ktime_get_ns();  /* last: the probe's own work is not waiting */
  if (pending.update(&tid, &p) != 0)
    lost.atomic_increment(LAB_LOST_TABLE);
  return 0;
}

int lock_return(struct pt_regs *ctx) {
  u64 now = bpf_ktime_get_ns();
  u32 tid = current_tid();
  struct lab_pending *pp = pending.lookup(&tid);
  if (!pp)
    return 0;
  struct lab_pending call = *pp;
  pending.delete(&tid);
  if (PT_REGS_RC(ctx) != 0)
    return 0;  /* an error: the mutex was not taken */

  struct lab_key row = {};
  row.lock = call.lock;
  row.caller = call.caller;
  row.tid = tid;
  row.stackid = call.stackid;

  /* The hold starts now; unlock_enter ends it. */
  struct lab_held_key hk = {};
  hk.lock = call.lock;
  hk.tid = tid;
  struct lab_held h = {};
  h.ts = now;
  h.row = row;
  if (held.update(&hk, &h) != 0)
    lost.atomic_increment(LAB_LOST_TABLE);

  // BEGIN TODO 1: wait time and enter count
  // HINT: Find the row's counters in `stats`, creating them (all zero) the first time this thread
  // HINT: takes this mutex from this stack: stats.lookup_or_try_init(&row, &zero) returns a
  // HINT: pointer to them, or NULL when the map is full (count that in `lost` as LAB_LOST_ROW).
  // HINT: Then add one enter and the time spent inside pthread_mutex_lock (now - call.ts).
  // HINT: Several CPUs may update one row at once: use __sync_fetch_and_add.
  // STUB: LAB_TODO(1);
  struct lab_stat zero = {};
  struct lab_stat *s = stats.lookup_or_try_init(&row, &zero);
  if (!s) {
    lost.atomic_increment(LAB_LOST_ROW);
    return 0;
  }
  __sync_fetch_and_add(&s->enters, 1);
  __sync_fetch_and_add(&s->wait_ns, now - call.ts);
  // END TODO 1
  return 0;
}

int unlock_enter(struct pt_regs *ctx) {
  u64 now = bpf_ktime_get_ns();
  struct lab_held_key hk = {};
  hk.lock = PT_REGS_PARM1(ctx);
  hk.tid = current_tid();
  struct lab_held *hp = held.lookup(&hk);
  if (!hp)
    return 0;  /* taken before tracing started, or not by a traced thread */
  struct lab_held h = *hp;
  held.delete(&hk);
  u64 hold = now - h.ts;

  // BEGIN TODO 2: hold time and hold-time histogram
  // HINT: Add one hold and `hold` nanoseconds to the counters of h.row in `stats` (create them
  // HINT: as TODO 1 does). Then count the hold in `hold_hist`: the key is the mutex, the thread
  // HINT: and the log2 slot of the hold in microseconds, lk_log2_slot(hold / 1000) from common.h
  // HINT: (the C++ side prints those slots with Log2Hist). A full map is LAB_LOST_HIST.
  // STUB: LAB_TODO(2);
  struct lab_stat zero = {};
  struct lab_stat *s = stats.lookup_or_try_init(&h.row, &zero);
  if (!s) {
    lost.atomic_increment(LAB_LOST_ROW);
    return 0;
  }
  __sync_fetch_and_add(&s->holds, 1);
  __sync_fetch_and_add(&s->hold_ns, hold);

  struct lab_hist_key bucket = {};
  bucket.lock = h.row.lock;
  bucket.tid = h.row.tid;
  bucket.slot = lk_log2_slot(hold / 1000);
  u64 none = 0;
  if (lk_add(hold_hist.lookup_or_try_init(&bucket, &none), 1) != 0)
    lost.atomic_increment(LAB_LOST_HIST);
  // END TODO 2
  return 0;
}
