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

/* Counters of the process-tree maps (lk_tree_counts, see "Process trees" below). */
enum lk_tree_count {
  LK_TREE_ADDED = 0,  /* processes added to the tree */
  LK_TREE_FULL,       /* forks not followed: lk_tree was full */
  LK_TREE_COUNTS
};
/* A process of the tree stopped before its first instruction (lk_tree_stops, with TREE_STOP). */
struct lk_tree_stop {
  __u32 parent; /* the process it was forked by; 0 at an exec */
  __u32 exec;   /* 1: stopped at an exec (a new program), 0: at its fork */
};

/* ---- Stacks (shared by the BPF side and the C++ reader) ----
 *
 * Stacks are stored in a hash map, `stacks`, keyed by a 31-bit stack id derived from a 64-bit hash
 * of the frames; the value keeps that hash, so two stacks whose ids collide are told apart, and the
 * second one takes the next free id (open addressing, up to LK_STACK_PROBES ids). One call site
 * gives one id; a stack is lost only when the map is full or LK_STACK_PROBES consecutive ids are
 * taken (the map would be far beyond full for that to happen by chance).
 *
 * User stacks are unwound in BPF with the call-frame information (.eh_frame) of every module:
 * user space turns it into rows (struct lk_unwind_row) in the `unwind_rows` array, one run of rows
 * per module, sorted by pc, and tells BPF where each process maps each module (the `unwind_maps`
 * LPM trie: (tgid, address) -> the module's rows and load bias). A frame whose module has no rows
 * (JIT code, a module mapped a moment ago) is unwound by its frame pointer. */
#define LK_STACK_MAX 127   /* frames per stack */
#define LK_STACK_PROBES 4  /* ids tried for one stack */
#define LK_UNWIND_SEARCH 22 /* binary-search steps: a module's rows are fewer than 2^22 */

/* How a stack ended (struct lk_stack.flags). */
#define LK_STACK_END 1    /* at the outermost frame (the return address is undefined there) */
#define LK_STACK_FP 2     /* some frame was unwound by its frame pointer (no rows for its module) */
#define LK_STACK_CUT 4    /* at a frame the rows cannot follow, or a read that failed */
#define LK_STACK_FULL 8   /* LK_STACK_MAX frames were taken: the stack may go on */
#define LK_STACK_KERNEL 16 /* a kernel stack (bpf_get_stack) */
#define LK_STACK_FP_LEAF 32 /* the leaf's module has no rows: its caller came from the frame pointer,
                             * which at a function's entry is the caller's own (the direct caller
                             * is skipped) */

struct lk_stack {
  __u64 hash;   /* of depth and frames; tells apart stacks whose ids collide */
  __u32 depth;  /* frames in ips */
  __u32 flags;  /* LK_STACK_* */
  __u64 ips[LK_STACK_MAX];  /* leaf first; every frame but the leaf is a return address */
};

/* The rule that gives the canonical frame address (CFA: the stack pointer before the call). */
enum lk_cfa_rule {
  LK_CFA_NONE = 0,  /* no call-frame information here (or a rule we cannot express): stop */
  LK_CFA_RSP = 1,   /* CFA = rsp + cfa_off */
  LK_CFA_RBP = 2,   /* CFA = rbp + cfa_off */
  LK_CFA_PLT = 3,   /* a PLT entry: CFA = rsp + 8, + 8 more once (rip & 15) >= cfa_off */
  LK_CFA_END = 4,   /* the outermost frame: the return address is undefined */
};
/* Where the caller's rbp is. */
enum lk_rbp_rule {
  LK_RBP_SAME = 0,     /* unchanged by this frame */
  LK_RBP_AT_CFA = 1,   /* saved at CFA + rbp_off */
  LK_RBP_UNKNOWN = 2,  /* not recoverable: a caller whose CFA is rbp-based cannot be unwound */
};

/* Valid from `pc` (linked address of the module, as a 32-bit offset) up to the next row's pc. The
 * return address is at CFA - 8 (x86-64; rows where it is not are LK_CFA_NONE). */
struct lk_unwind_row {
  __u32 pc;
  __u8 cfa;   /* enum lk_cfa_rule */
  __u8 rbp;   /* enum lk_rbp_rule */
  __u16 pad;
  __s32 cfa_off;
  __s32 rbp_off;
};

/* unwind_maps key: an LPM trie key, 32 bits of tgid then 64 bits of address, both big-endian;
 * prefixlen counts from the tgid's first bit. */
struct lk_unwind_key {
  __u32 prefixlen;
  __u8 data[12];
};

struct lk_unwind_map {
  __u64 bias;   /* runtime address - linked address */
  __u32 first;  /* the module's first row in unwind_rows */
  __u32 count;  /* and how many */
};

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

/* Stacks, with -DSTACK_ENTRIES=N (the stacks map), -DUNWIND_ROWS=R and -DUNWIND_MAPS=M (the
 * unwind tables, sized by user space for the modules it found): see "Stacks" above.
 *
 *   lk_user_stack(ctx)        at a uprobe: the user stack from the probed instruction;
 *   lk_user_stack_syscall()   at a tracepoint in a system call: the user stack from where the
 *                             task entered the kernel (its saved user registers);
 *   lk_kernel_stack(ctx)      the kernel stack (the kernel's own walk).
 * Each returns a stack id (>= 0) or a negative error when the stack could not be stored. */
#ifdef STACK_ENTRIES
#include <uapi/linux/ptrace.h>
BPF_HASH(stacks, __s32, struct lk_stack, STACK_ENTRIES);
BPF_PERCPU_ARRAY(stack_scratch, struct lk_stack, 1);
#ifdef UNWIND_ROWS
BPF_ARRAY(unwind_rows, struct lk_unwind_row, UNWIND_ROWS);
BPF_LPM_TRIE(unwind_maps, struct lk_unwind_key, struct lk_unwind_map, UNWIND_MAPS);
#endif

/* Stores the stack in `s` (its depth and flags set), hashing it first; returns its id. */
LK_INLINE __s32 lk_store_stack(struct lk_stack *s) {
  __u32 depth = s->depth;
  __u64 h = 0xcbf29ce484222325ULL ^ depth;
#pragma clang loop unroll(disable)
  for (__u32 i = 0; i < LK_STACK_MAX; i++) {
    if (i >= depth)
      break;
    h = (h ^ s->ips[i]) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  s->hash = h;
  __s32 id = (__s32)((h ^ (h >> 31) ^ (h >> 62)) & 0x7fffffff);
  for (int k = 0; k < LK_STACK_PROBES; k++) {
    __s32 at = (id + k) & 0x7fffffff;
    struct lk_stack *have = stacks.lookup(&at);
    if (have) {
      if (have->hash == h)
        return at;
      continue; /* another stack holds this id */
    }
    int err = stacks.insert(&at, s);
    if (err == 0)
      return at;
    have = stacks.lookup(&at); /* another CPU took the id meanwhile: maybe with this stack */
    if (have && have->hash == h)
      return at;
    if (err != -17) /* not -EEXIST: the map is full */
      return err;
  }
  return -17;
}

#ifdef UNWIND_ROWS
/* Unwinds from (ip, sp, bp) into the per-CPU scratch stack and stores it. */
LK_INLINE __s32 lk_unwind_user(__u64 ip, __u64 sp, __u64 bp) {
  int zero = 0;
  struct lk_stack *s = stack_scratch.lookup(&zero);
  if (!s)
    return -12;
  __u32 tgid_be = __builtin_bswap32((__u32)(bpf_get_current_pid_tgid() >> 32));
  s->flags = 0;
  s->depth = 0;
  for (int i = 0; i < LK_STACK_MAX; i++) {
    if (ip == 0)
      break;
    s->ips[i] = ip;
    s->depth = i + 1;
    /* A return address points after its call: look up the call itself. */
    __u64 at = i == 0 ? ip : ip - 1;
    struct lk_unwind_key key = {};
    key.prefixlen = 96;
    __builtin_memcpy(key.data, &tgid_be, 4);
    __u64 at_be = __builtin_bswap64(at);
    __builtin_memcpy(key.data + 4, &at_be, 8);
    struct lk_unwind_map *m = unwind_maps.lookup(&key);
    __u64 cfa = 0, ra = 0, nbp = bp;
    if (!m) {
      /* No rows for this code: its frame pointer, if it keeps one. At frame 0 of a function's
       * entry that is the caller's frame: user space puts the direct caller back. */
      s->flags |= i == 0 ? LK_STACK_FP | LK_STACK_FP_LEAF : LK_STACK_FP;
    by_frame_pointer:
      if (bp == 0 || bp < sp)
        goto cut;
      if (bpf_probe_read_user(&nbp, 8, (void *)bp) != 0 ||
          bpf_probe_read_user(&ra, 8, (void *)(bp + 8)) != 0)
        goto cut;
      sp = bp + 16;
      bp = nbp;
      ip = ra;
      continue;
    }
    __u64 rel = at - m->bias;
    __u32 lo = m->first, n = m->count;
    if (n == 0 || rel >= 0xffffffffULL)
      goto cut;
    /* The last row whose pc <= rel: rows [lo, lo + n) with rows[lo].pc <= rel (user space starts
     * every module with a row at its lowest address). */
    for (int step = 0; step < LK_UNWIND_SEARCH; step++) {
      if (n <= 1)
        break;
      __u32 half = n / 2;
      __u32 mid = lo + half;
      struct lk_unwind_row *r = unwind_rows.lookup(&mid);
      if (!r)
        goto cut;
      /* take = (r->pc <= rel), without a branch: rel < 2^32, so rel - pc wraps (top bit set)
       * exactly when pc > rel. The empty asm keeps the compiler from turning it back into a
       * compare and jump: a branch here forks the verifier's state at every search step of
       * every frame, which made each program that unwinds take ~0.5 s of CPU to load. */
      __u64 d = rel - (__u64)r->pc;
      asm volatile("" : "+r"(d));
      __u32 take = (__u32)(1 ^ (d >> 63));
      lo += take * half;
      n -= take * half + (1 - take) * (n - half);
    }
    struct lk_unwind_row *row = unwind_rows.lookup(&lo);
    if (!row || row->pc > (__u32)rel)
      goto cut;
    switch (row->cfa) {
    case LK_CFA_RSP:
      cfa = sp + row->cfa_off;
      break;
    case LK_CFA_RBP:
      if (bp == 0)
        goto cut;
      cfa = bp + row->cfa_off;
      break;
    case LK_CFA_PLT:
      cfa = sp + 8 + ((ip & 15) >= (__u64)row->cfa_off ? 8 : 0);
      break;
    case LK_CFA_END:
      s->flags |= LK_STACK_END;
      goto done;
    default:
      /* A rule the rows cannot express (a CFA computed by a DWARF expression, as in a function
       * that realigns its stack: such a function keeps rbp as its frame pointer). */
      s->flags |= LK_STACK_FP;
      goto by_frame_pointer;
    }
    if (bpf_probe_read_user(&ra, 8, (void *)(cfa - 8)) != 0)
      goto cut;
    if (row->rbp == LK_RBP_AT_CFA) {
      if (bpf_probe_read_user(&nbp, 8, (void *)(cfa + row->rbp_off)) != 0)
        goto cut;
    } else if (row->rbp == LK_RBP_UNKNOWN) {
      nbp = 0;
    }
    sp = cfa;
    bp = nbp;
    ip = ra;
  }
  if (s->depth >= LK_STACK_MAX)
    s->flags |= LK_STACK_FULL;
  goto done;
cut:
  s->flags |= LK_STACK_CUT;
done:
  return lk_store_stack(s);
}

/* A command the tool starts is stopped once the dynamic linker has mapped every library it
 * needs, before any code of theirs runs, so that user space can put those mappings in unwind_maps
 * before the first stack is taken (core/unwind.h, attach_startup_stop). This runs at the dynamic
 * linker's _dl_debug_state, which it calls before it maps the libraries (r_state RT_ADD) and once
 * they are all mapped (RT_CONSISTENT); the attach cookie is the distance from _dl_debug_state to
 * _r_debug.r_state. It stops the process once, with SIGSTOP; user space continues it (or, when it
 * has given up waiting, inserts the key itself so that no stop comes later). */
BPF_HASH(lk_startup_stopped, __u32, __u32, 1);
int lk_startup_stop(struct pt_regs *ctx) {
  __s32 state = -1;
  if (bpf_probe_read_user(&state, sizeof(state), (void *)(PT_REGS_IP(ctx) + bpf_get_attach_cookie(ctx))) != 0 ||
      state != 0 /* RT_CONSISTENT */)
    return 0;
  /* Whoever inserts key 0 first decides: this program (stop) or user space giving up (never). */
  __u32 zero = 0, one = 1;
  if (lk_startup_stopped.insert(&zero, &one) != 0)
    return 0;
  bpf_send_signal(19 /* SIGSTOP */);
  return 0;
}

/* At a uprobe: from the probed instruction's registers. */
LK_INLINE __s32 lk_user_stack(struct pt_regs *ctx) {
  return lk_unwind_user(PT_REGS_IP(ctx), PT_REGS_SP(ctx), ctx->bp);
}

/* In a system call (a syscall or sched tracepoint): from the user registers the task entered the
 * kernel with. */
LK_INLINE __s32 lk_user_stack_syscall(void) {
  __u64 regs = bpf_task_pt_regs(bpf_get_current_task_btf());
  if (regs == 0)
    return -14;
  __u64 ip = 0, sp = 0, bp = 0;
  bpf_probe_read_kernel(&ip, 8, (void *)(regs + __builtin_offsetof(struct pt_regs, ip)));
  bpf_probe_read_kernel(&sp, 8, (void *)(regs + __builtin_offsetof(struct pt_regs, sp)));
  bpf_probe_read_kernel(&bp, 8, (void *)(regs + __builtin_offsetof(struct pt_regs, bp)));
  return lk_unwind_user(ip, sp, bp);
}
#endif /* UNWIND_ROWS */

/* The kernel stack at this probe, by the kernel's own walk. */
LK_INLINE __s32 lk_kernel_stack(void *ctx) {
  int zero = 0;
  struct lk_stack *s = stack_scratch.lookup(&zero);
  if (!s)
    return -12;
  long n = bpf_get_stack(ctx, s->ips, sizeof(s->ips), 0);
  if (n < 0)
    return (__s32)n;
  s->depth = (__u32)(n / 8);
  s->flags = LK_STACK_KERNEL;
  return lk_store_stack(s);
}
#endif /* STACK_ENTRIES */

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

/* Process trees, with -DTRACE_TREE=1 (and TARGET_PID, the tree's root): `lk_tree` holds every other
 * process of the tree, tgid -> the tgid of the process that forked it (0 once it has executed a
 * program of its own). lk_tree_fork (on sched:sched_process_fork, in the parent) adds each process a
 * traced process forks (fork, vfork, clone without CLONE_THREAD); lk_tree_free (on
 * sched:sched_process_free) removes a task's entry once it is freed, after its last thread (a
 * group's leader is freed last: its pid is not reused before); lk_tree_exec (on
 * sched:sched_process_exec) marks a process that executed a program. Counters in `lk_tree_counts`
 * (enum lk_tree_count, above). User space attaches the three (core/tree.h). */
#ifdef TRACE_TREE
#ifndef MAX_TREE
#define MAX_TREE 16384
#endif
BPF_HASH(lk_tree, __u32, __u32, MAX_TREE);
BPF_ARRAY(lk_tree_counts, __u64, LK_TREE_COUNTS);
#endif

/* Target filter, from -D defines: 1 when the thread `pid_tgid` (bpf_get_current_pid_tgid()) is to
 * be traced.
 *   TARGET_PID  only this process (tgid), and with TRACE_TREE the processes in lk_tree; 0 = every
 *               process. Without it there is no lk_traced().
 *   TARGET_TID  only this thread; 0 or not defined = every thread.
 *   SELF_PID    never this process (the tool itself); not defined = no process left out.
 * The target itself is one comparison with a constant; only other processes look in lk_tree. */
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
  if (TARGET_PID != 0 && pid != TARGET_PID) {
#ifdef TRACE_TREE
    return TARGET_TID == 0 && lk_tree.lookup(&pid) != 0;
#else
    return 0;
#endif
  }
  if (TARGET_TID != 0 && (__u32)pid_tgid != TARGET_TID)
    return 0;
  return 1;
}

#ifdef TRACE_TREE
#define LK_CLONE_VM 0x100
#define LK_CLONE_THREAD 0x10000

/* The clone flags of the fork-like system call the current task is in (fork, vfork, clone, clone3:
 * x86-64 numbers), read from its saved user registers; ~0 when it is in none of them (a task the
 * kernel starts from another call, such as an io_uring worker, which is a thread). */
LK_INLINE __u64 lk_clone_flags(void) {
  __u64 regs = bpf_task_pt_regs(bpf_get_current_task_btf());
  if (regs == 0)
    return ~0ULL;
  __u64 nr = 0, di = 0, flags = 0;
  bpf_probe_read_kernel(&nr, 8, (void *)(regs + __builtin_offsetof(struct pt_regs, orig_ax)));
  bpf_probe_read_kernel(&di, 8, (void *)(regs + __builtin_offsetof(struct pt_regs, di)));
  switch (nr) {
  case 57: /* fork */
    return 0;
  case 58: /* vfork */
    return LK_CLONE_VM | 0x4000 /* CLONE_VFORK */;
  case 56: /* clone(flags, ...) */
    return di;
  case 435: /* clone3(struct clone_args *): flags first */
    if (bpf_probe_read_user(&flags, 8, (void *)di) != 0)
      return ~0ULL;
    return flags;
  }
  return ~0ULL;
}

int lk_tree_fork(struct tracepoint__sched__sched_process_fork *args) {
  __u64 id = bpf_get_current_pid_tgid();
  if (!lk_traced(id))
    return LK_TP_PASS_ON;
  if (lk_clone_flags() & LK_CLONE_THREAD)
    return LK_TP_PASS_ON; /* a thread of the same process (or not a fork at all) */
  __u32 child = args->child_pid, parent = id >> 32;
  if (lk_tree.update(&child, &parent) != 0)
    lk_tree_counts.atomic_increment(LK_TREE_FULL);
  else
    lk_tree_counts.atomic_increment(LK_TREE_ADDED);
  return LK_TP_PASS_ON;
}

#ifdef TREE_STOP
/* Probes that are bound to one process (uprobes: each process of the tree has its own), with
 * -DTREE_STOP=1: a new process of the tree stops itself before its first instruction, so that user
 * space can attach its probes first. It sends itself SIGSTOP from a program that runs in its own
 * context before it returns to user space (the exit of its fork-like system call, or its exec);
 * the signal is taken before any instruction of its own. Its pid goes to `lk_tree_stops` (pid ->
 * struct lk_tree_stop) and, as a wake-up, to the ring buffer `lk_tree_events`; user space attaches,
 * deletes the entry and sends SIGCONT (core/tree.h, which also makes sure a stopped process is
 * continued if the tool dies). */
BPF_HASH(lk_tree_stops, __u32, struct lk_tree_stop, MAX_TREE);
BPF_RINGBUF_OUTPUT(lk_tree_events, 8);

LK_INLINE void lk_tree_stop_self(__u32 pid, __u32 parent, __u32 exec) {
  struct lk_tree_stop st = {};
  st.parent = parent;
  st.exec = exec;
  if (lk_tree_stops.update(&pid, &st) != 0) {
    lk_tree_counts.atomic_increment(LK_TREE_FULL);
    return;
  }
  bpf_send_signal(19 /* SIGSTOP */);
  lk_tree_events.ringbuf_output(&pid, sizeof(pid), 0);
}

/* At the exit of fork, vfork, clone and clone3, in the new task (its return value is 0): a new
 * process of the tree with an address space of its own stops. A thread belongs to a process that
 * has its probes; a child that shares its parent's memory (vfork, CLONE_VM) runs its parent's
 * breakpoints until it executes a program, where it stops. */
int lk_tree_child(struct tracepoint__syscalls__sys_exit_fork *args) {
  if (args->ret != 0)
    return LK_TP_PASS_ON;
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32;
  if ((__u32)id != pid)
    return LK_TP_PASS_ON; /* a new thread */
  __u32 *parent = lk_tree.lookup(&pid);
  if (!parent)
    return LK_TP_PASS_ON;
  if (lk_clone_flags() & (LK_CLONE_VM | LK_CLONE_THREAD))
    return LK_TP_PASS_ON;
  lk_tree_stop_self(pid, *parent, 0);
  return LK_TP_PASS_ON;
}
#endif /* TREE_STOP */

int lk_tree_exec(struct tracepoint__sched__sched_process_exec *args) {
  __u32 pid = bpf_get_current_pid_tgid() >> 32;
  __u32 *parent = lk_tree.lookup(&pid);
  if (!parent)
    return LK_TP_PASS_ON;
  *parent = 0; /* an address space of its own from now on */
#ifdef TREE_STOP
  lk_tree_stop_self(pid, 0, 1); /* a new program: maybe another pthread library to probe */
#endif
  return LK_TP_PASS_ON;
}

int lk_tree_free(struct tracepoint__sched__sched_process_free *args) {
  __u32 pid = args->pid;
  lk_tree.delete(&pid);
  return LK_TP_PASS_ON;
}
#endif /* TRACE_TREE */
#endif /* TARGET_PID */
#endif /* !__cplusplus */

#endif
