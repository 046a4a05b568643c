/* The lab locktrace: the structs its BPF program and its C++ reader share. The build puts this
 * header (after probes/common.h) in front of the BPF text, and the C++ side includes it too. */
#ifndef LAB_LOCKTRACE_H
#define LAB_LOCKTRACE_H

#ifdef __cplusplus
#include "common.h"
#endif

/* A thread inside a futex call, from sys_enter_futex to sys_exit_futex. */
struct lab_call {
  __u64 uaddr;       /* the futex word */
  __u64 caller;      /* the word at the user stack pointer at entry (see lab_row_key) */
  __u64 start_ns;    /* when the call was entered */
  __u64 off_ns;      /* when the thread was switched out asleep; 0 while it runs or is runnable */
  __u64 blocked_ns;  /* the blocked intervals that have ended */
  __s32 stackid;     /* user stack at entry; negative when it could not be stored */
  __u32 is_wait;     /* 1 for a wait operation, 0 for a wake (or another) operation */
  __u32 blocks;      /* times the thread was switched out asleep during the call */
  __u32 preempts;    /* times it was switched out while still runnable */
};

/* One CSV row: a thread's calls on one futex word from one call stack. */
struct lab_row_key {
  __u64 uaddr;
  __u64 caller;   /* libc's syscall() keeps no frame pointer: the return address into its caller */
  __u32 pid;
  __u32 tid;
  __s32 stackid;
  __u32 pad;
};

struct lab_row {
  __u64 blocked_ns;      /* time asleep inside wait calls */
  __u64 sys_ns;          /* the rest of the time inside the calls */
  __u64 max_blocked_ns;  /* the longest single call, asleep */
  __u64 max_sys_ns;      /* the longest single call, the rest */
  __u64 wait_count;      /* wait operations */
  __u64 blocked_count;   /* wait operations that really slept */
  __u64 wake_count;      /* wake operations */
  __u64 errors;          /* calls that returned an error */
  __u64 preempted;       /* calls during which the thread was preempted */
  char comm[16];
};

/* What the BPF side could not record, counted by reason in the `lost` array. */
enum lab_lost { LAB_LOST_CALL = 0, LAB_LOST_ROW, LAB_LOST_STACK, LAB_LOST_MAX };

/* A placeholder the skeleton leaves where code is missing; the C++ side looks for it in the
 * program text and names the TODO it stands for. */
#define LAB_TODO(n) do { } while (0)

#endif
