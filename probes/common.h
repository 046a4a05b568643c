/* Definitions shared by every probe program and by the C++ side that reads its maps, then the
 * helpers every probe program uses (counters, lookup-or-init, drops by reason, target filter).
 * Compiled both by BCC (as part of the embedded BPF text) and by the C++ compiler. */
#ifndef LOCKKIT_COMMON_H
#define LOCKKIT_COMMON_H

#ifdef __cplusplus
#include <linux/types.h>
#define LK_INLINE static inline
#else
#define LK_INLINE static inline __attribute__((always_inline))
#endif

/* log2 histogram slots: slot 0 holds the value 0, slot k (k >= 1) holds [2^(k-1), 2^k - 1]. */
#define LK_HIST_SLOTS 65

LK_INLINE __u32 lk_log2_slot(__u64 v) {
  __u32 r = 0;
  if (v >> 32) { v >>= 32; r += 32; }
  if (v >> 16) { v >>= 16; r += 16; }
  if (v >> 8) { v >>= 8; r += 8; }
  if (v >> 4) { v >>= 4; r += 4; }
  if (v >> 2) { v >>= 2; r += 2; }
  if (v >> 1) { v >>= 1; r += 1; }
  return v ? r + 1 : 0;
}

/* What a BPF program attached to a tracepoint through perf returns. The kernel hands the event
 * on to the tracepoint's other perf consumers (perf stat, perf record, perf lock) only when the
 * program returns non-zero: returning 0 would blind every other tracer of that event while we run. */
#define LK_TP_PASS_ON 1

/* A stack map is a hash table with one stack per bucket: a second stack hashing to an occupied
 * bucket fails (-EEXIST) long before the map is full (69 stacks in 1024 buckets collide more often
 * than not). Stacks that collide go to a second map, `stacks_spill`; their ids carry this bit. A
 * stack is lost only when it collides in both. */
#define LK_STACK_SPILL_BIT 0x40000000

#ifndef __cplusplus
/* ---- Helpers for the BPF programs (not compiled on the C++ side) ----
 *
 * BCC rewrites a map method call (map.lookup(&k), map.insert(...)) only where it is spelled in the
 * program text: inside a macro it refuses it ("cannot use map function inside a macro"), and a map
 * cannot be passed to a function. So these helpers take what a map call returned, and the call
 * stays at the call site:
 *
 *   counter in an array:   drops.atomic_increment(LK_DROP_STACK_LOST);   (BCC's own: lookup + add)
 *   counter in a hash:     u64 zero = 0;
 *                          if (lk_add(hists.lookup_or_try_init(&k, &zero), 1) != 0)
 *                            count_drop(LK_DROP_HIST_FULL);
 *   row, created once:     struct v *row = lk_or_drop(stats.lookup_or_try_init(&k, &init),
 *                                                     LK_DROP_STATS_FULL);
 *
 * map.lookup_or_try_init(&key, &init) (BCC) returns the key's value, inserting `init` first when
 * there is none; when another CPU inserts the same key meanwhile it returns that one. NULL means
 * the map is full. (Not BCC's lookup_or_init: that one returns from the calling function.)
 * map.atomic_increment(key [, n]) on a hash map loses the increment when the map is full without
 * saying so: use it on arrays only. */

/* Adds n to the counter at c (a map value) and returns 0; returns -1 when there is no counter. */
LK_INLINE int lk_add(__u64 *c, __u64 n) {
  if (!c)
    return -1;
  __sync_fetch_and_add(c, n);
  return 0;
}

/* Drops by reason: with -DMAX_DROPS=N (the number of reasons, from the tool's map-size table) the
 * program gets the `drops` array, N u64 counters that user space reads by reason, and
 * count_drop(reason). The map is declared here rather than in the program because this text comes
 * before the program's own, and count_drop must follow the map it counts in. */
#ifdef MAX_DROPS
BPF_ARRAY(drops, u64, MAX_DROPS);

LK_INLINE void count_drop(int why) { drops.atomic_increment(why); }

/* Passes a map value through, counting a drop for `why` when there is none (the map is full). */
LK_INLINE void *lk_or_drop(void *v, int why) {
  if (!v)
    count_drop(why);
  return v;
}
#endif

/* Stack ids, with -DSTACK_ENTRIES=N -DSTACK_SPILL_ENTRIES=M: the `stacks` and `stacks_spill` maps
 * and lk_stackid(ctx, flags), which returns a stack id (spilled ones with LK_STACK_SPILL_BIT) or
 * a negative error when the stack could not be stored. */
#ifdef STACK_ENTRIES
BPF_STACK_TRACE(stacks, STACK_ENTRIES);
BPF_STACK_TRACE(stacks_spill, STACK_SPILL_ENTRIES);

LK_INLINE int lk_stackid(void *ctx, __u64 flags) {
  int id = stacks.get_stackid(ctx, flags);
  if (id != -17) /* -EEXIST: the bucket holds another stack */
    return id;
  id = stacks_spill.get_stackid(ctx, flags);
  return id < 0 ? id : (id | LK_STACK_SPILL_BIT);
}
#endif

/* The word at the user stack pointer when the current system call was entered, from the task's
 * saved user registers (0 when unreadable). In a leaf wrapper such as libc's syscall() or
 * __lll_lock_wait that word is the return address into its caller: the frame the frame-pointer walk
 * skips. (A tracepoint's context cannot be used for this: its first 8 bytes, where the kernel keeps
 * the pt_regs pointer, are off limits.) */
#include <uapi/linux/ptrace.h>
LK_INLINE __u64 lk_syscall_sp_word(void) {
  __u64 regs = bpf_task_pt_regs(bpf_get_current_task_btf());
  __u64 sp = 0, word = 0;
  if (regs == 0)
    return 0;
  bpf_probe_read_kernel(&sp, sizeof(sp), (void *)(regs + __builtin_offsetof(struct pt_regs, sp)));
  if (sp == 0)
    return 0;
  bpf_probe_read_user(&word, sizeof(word), (void *)sp);
  return word;
}

/* Target filter, from -D defines: 1 when the thread `pid_tgid` (bpf_get_current_pid_tgid()) is to
 * be traced.
 *   TARGET_PID  only this process (tgid); 0 = every process. Without it there is no lk_traced().
 *   TARGET_TID  only this thread; 0 or not defined = every thread.
 *   SELF_PID    never this process (the tool itself); not defined = no process left out. */
#ifdef TARGET_PID
#ifndef TARGET_TID
#define TARGET_TID 0
#endif

LK_INLINE int lk_traced(__u64 pid_tgid) {
  __u32 pid = pid_tgid >> 32;
#ifdef SELF_PID
  if (pid == SELF_PID)
    return 0;
#endif
  if (TARGET_PID != 0 && pid != TARGET_PID)
    return 0;
  if (TARGET_TID != 0 && (__u32)pid_tgid != TARGET_TID)
    return 0;
  return 1;
}
#endif /* TARGET_PID */
#endif /* !__cplusplus */

#endif
