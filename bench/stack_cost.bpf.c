/* stack_cost: what one user stack costs at a uprobe, for each way of taking it, on the same events.
 * At each call of the probed function (pthread_mutex_lock of TARGET_PID) the program times, one
 * after the other: nothing (the clock's own cost), the kernel's frame-pointer walk into a stack map
 * (what the tools did before), the call-frame-information walk every tool now uses (lk_user_stack:
 * walk, hash, store), and the other design: copying COPY_BYTES of the user stack and the registers
 * into a perf buffer for user space to unwind. Sums per CPU in `cost`. */
#include <uapi/linux/ptrace.h>

enum { C_EVENTS, C_EMPTY_NS, C_FP_NS, C_CFI_NS, C_COPY_NS, C_FP_DEPTH, C_CFI_DEPTH, C_COPY_FAILED, C_MAX };

struct window {
  u64 ip, sp, bp;
  u8 bytes[COPY_BYTES];
};

BPF_PERCPU_ARRAY(cost, u64, C_MAX);
BPF_STACK_TRACE(fp_stacks, STACK_ENTRIES);
BPF_PERCPU_ARRAY(window_scratch, struct window, 1);
BPF_PERF_OUTPUT(windows);

static __always_inline void add(int which, u64 v) {
  u64 *c = cost.lookup(&which);
  if (c)
    *c += v;
}

int on_lock(struct pt_regs *ctx) {
  if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID)
    return 0;
  u64 t0 = bpf_ktime_get_ns();
  u64 t1 = bpf_ktime_get_ns();
  int fp = fp_stacks.get_stackid(ctx, BPF_F_USER_STACK);
  u64 t2 = bpf_ktime_get_ns();
  int cfi = lk_user_stack(ctx);
  u64 t3 = bpf_ktime_get_ns();
  int zero = 0;
  struct window *w = window_scratch.lookup(&zero);
  if (w) {
    w->ip = PT_REGS_IP(ctx);
    w->sp = PT_REGS_SP(ctx);
    w->bp = ctx->bp;
    if (bpf_probe_read_user(w->bytes, sizeof(w->bytes), (void *)PT_REGS_SP(ctx)) != 0)
      add(C_COPY_FAILED, 1);
    windows.perf_submit(ctx, w, sizeof(*w));
  }
  u64 t4 = bpf_ktime_get_ns();
  add(C_EVENTS, 1);
  add(C_EMPTY_NS, t1 - t0);
  add(C_FP_NS, t2 - t1);
  add(C_CFI_NS, t3 - t2);
  add(C_COPY_NS, t4 - t3);
  if (cfi >= 0) {
    struct lk_stack *s = stacks.lookup(&cfi);
    if (s)
      add(C_CFI_DEPTH, s->depth);
  }
  return 0;
}
