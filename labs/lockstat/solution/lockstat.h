/* The lab lockstat: the structs its BPF program and its C++ reader share. The build puts this
 * header (after probes/common.h) in front of the BPF text, and the C++ side includes it too. */
#ifndef LAB_LOCKSTAT_H
#define LAB_LOCKSTAT_H

#ifdef __cplusplus
#include "common.h"
#endif

/* One row of the report: a thread taking one mutex from one call stack. */
struct lab_key {
  __u64 lock;     /* the mutex's address */
  __u64 caller;   /* return address into the function that called pthread_mutex_lock */
  __u32 tid;
  __s32 stackid;  /* user stack at pthread_mutex_lock; negative when it could not be stored */
};

struct lab_stat {
  __u64 enters;   /* pthread_mutex_lock calls that returned 0 */
  __u64 wait_ns;  /* time inside those calls */
  __u64 holds;    /* unlocks matched with one of those acquisitions */
  __u64 hold_ns;  /* time from each acquisition to its unlock */
};

/* A thread inside pthread_mutex_lock, from its entry to its return. */
struct lab_pending {
  __u64 lock;
  __u64 ts;
  __u64 caller;
  __s32 stackid;
  __u32 pad;
};

/* A mutex a thread holds: when it got it, and the row the hold belongs to. */
struct lab_held_key {
  __u64 lock;
  __u32 tid;
  __u32 pad;
};
struct lab_held {
  __u64 ts;
  struct lab_key row;
};

/* One bucket of the hold-time histogram of a row's mutex and thread: log2 of microseconds. */
struct lab_hist_key {
  __u64 lock;
  __u32 tid;
  __u32 slot;
};

/* Where a mutex was initialized. */
struct lab_init {
  __u64 caller;
  __s32 stackid;
  __u32 tid;
};

/* What the BPF side could not record, counted by reason in the `lost` array. */
enum lab_lost { LAB_LOST_ROW = 0, LAB_LOST_STACK, LAB_LOST_HIST, LAB_LOST_TABLE, LAB_LOST_MAX };

/* A placeholder the skeleton leaves where code is missing; the C++ side looks for it in the
 * program text and names the TODO it stands for. */
#define LAB_TODO(n) do { } while (0)

#endif
