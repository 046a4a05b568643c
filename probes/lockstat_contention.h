/* lockstat --mode contention: every struct that crosses the kernel/user boundary. Included by
 * lockstat_contention.bpf.c (the build prepends it to the embedded BPF text) and by the C++ reader,
 * which static_asserts sizes.
 *
 * This mode puts no probe on the lock and unlock paths. It watches the target's futex system calls:
 * a thread that finds a lock taken and sleeps in the kernel (a futex wait) is a contention; the
 * futex wake that woke it is the holder's release. Names come from init-function uprobes (rarely
 * called) and data symbols. */
#ifndef LOCKKIT_LOCKSTAT_CONTENTION_H
#define LOCKKIT_LOCKSTAT_CONTENTION_H

#ifndef LOCKKIT_EMBEDDED
#include "common.h"
#endif

/* futex(2) commands (include/uapi/linux/futex.h), and pseudo commands for the futex2 calls. */
#define LC_FUTEX_WAIT 0
#define LC_FUTEX_WAKE 1
#define LC_FUTEX_REQUEUE 3
#define LC_FUTEX_CMP_REQUEUE 4
#define LC_FUTEX_WAKE_OP 5
#define LC_FUTEX_LOCK_PI 6
#define LC_FUTEX_UNLOCK_PI 7
#define LC_FUTEX_WAIT_BITSET 9
#define LC_FUTEX_WAKE_BITSET 10
#define LC_FUTEX_WAIT_REQUEUE_PI 11
#define LC_FUTEX_CMP_REQUEUE_PI 12
#define LC_FUTEX_LOCK_PI2 13
#define LC_FUTEX_PRIVATE_FLAG 128
#define LC_FUTEX_CLOCK_REALTIME 256
#define LC_FUTEX_CMD_MASK 0x7f
#define LC_CMD_FUTEX2_WAIT 0x70  /* futex_wait(2) */
#define LC_CMD_FUTEX2_WAKE 0x71  /* futex_wake(2) */
#define LC_CMD_FUTEX2_WAITV 0x72 /* futex_waitv(2): attributed to its first futex */

/* What a call's `hint` says about it: in its low 8 bits the command with the private flag (or one of
 * the LC_CMD_FUTEX2_* pseudo commands), and LC_HINT_VAL2 for a wait for the value 2, the value a
 * glibc mutex (and every lll lock) has while it is locked with waiters. */
#define LC_HINT_VAL2 0x100

/* A plain FUTEX_WAIT (private or shared) for the value 2: the glibc mutex protocol's wait. */
LK_INLINE int lc_hint_mutex_wait(__u32 hint) {
  return (hint & LC_HINT_VAL2) && (hint & LC_FUTEX_CMD_MASK) == LC_FUTEX_WAIT;
}

enum lc_class { LC_CLASS_NONE = 0, LC_CLASS_WAIT = 1, LC_CLASS_WAKE = 2 };

/* futex(2)'s command, the private and clock flags stripped. */
LK_INLINE __u32 lc_classify_cmd(__u32 cmd) {
  switch (cmd) {
  case LC_FUTEX_WAIT:
  case LC_FUTEX_WAIT_BITSET:
  case LC_FUTEX_LOCK_PI:
  case LC_FUTEX_LOCK_PI2:
  case LC_FUTEX_WAIT_REQUEUE_PI:
  case LC_CMD_FUTEX2_WAIT:
  case LC_CMD_FUTEX2_WAITV:
    return LC_CLASS_WAIT;
  case LC_FUTEX_WAKE:
  case LC_FUTEX_WAKE_BITSET:
  case LC_FUTEX_WAKE_OP:
  case LC_FUTEX_REQUEUE:
  case LC_FUTEX_CMP_REQUEUE:
  case LC_FUTEX_CMP_REQUEUE_PI:
  case LC_FUTEX_UNLOCK_PI:
  case LC_CMD_FUTEX2_WAKE:
    return LC_CLASS_WAKE;
  default:
    return LC_CLASS_NONE;
  }
}

/* A thread inside a futex call, from sys_enter to sys_exit. */
struct lc_call {
  __u64 uaddr;
  __u64 start_ns;
  __u32 owner;  /* the u32 at uaddr + 8 when a wait began: a glibc mutex's __owner (holder tid) */
  __u32 hint;   /* LC_HINT_* */
  __u32 cls;    /* enum lc_class */
  __u32 pid;    /* tgid of the thread */
};

/* One row of waits: per process, futex word, waiting thread, holder seen at the wait, waiting
 * stack. (A word is an address of its process: a tree of processes may use the same addresses.) */
struct lc_wait_key {
  __u64 uaddr;
  __u64 caller;   /* word at the user stack pointer at the syscall (see locktrace's lt_call.caller) */
  __u32 pid;
  __u32 tid;
  __u32 holder;   /* lc_call.owner */
  __s32 stackid;  /* user stack of the waiter; negative when it could not be stored */
  __u32 hint;
  __u32 pad;
};

struct lc_wait_val {
  __u64 contentions;  /* waits that slept in the kernel (woken, timed out or interrupted) */
  __u64 wait_ns;      /* their time from syscall entry to exit */
  __u64 max_wait_ns;
  __u64 timeouts;     /* of those, waits that ended with ETIMEDOUT */
};

/* Waits that returned EAGAIN at once: the word had changed (the lock was released) between the
 * thread's failed attempt and the system call. Counted per word and thread, not as contentions. */
struct lc_retry_key {
  __u64 uaddr;
  __u32 pid;
  __u32 tid;
  __u32 hint;
  __u32 pad;
};

/* One row of releases: futex wakes that woke at least one waiter, per process, word, waker and
 * stack. */
struct lc_release_key {
  __u64 uaddr;
  __u64 caller;
  __u32 pid;
  __u32 tid;
  __s32 stackid;
  __u32 hint;
};

struct lc_release_val {
  __u64 wakes;   /* wake calls that woke someone */
  __u64 woken;   /* threads they woke (or requeued) */
};

/* Object kinds named by init calls. */
enum lc_init_kind { LC_INIT_MUTEX = 0, LC_INIT_RWLOCK = 1, LC_INIT_COND = 2, LC_INIT_SEM = 3 };

/* An object seen being initialised: its address in its process. */
struct lc_init_key {
  __u64 addr;
  __u32 pid;
  __u32 pad;
};

struct lc_init {
  __u64 caller;
  __s32 stackid;
  __u32 tid;
  __u32 kind;  /* enum lc_init_kind */
  __u32 pad;
};

/* Reasons BPF could not record something; counted in the `drops` array and shown by reports. */
enum lc_drop {
  LC_DROP_CALLS_FULL = 0,  /* too many threads inside futex calls at once: a call was not traced */
  LC_DROP_WAITS_FULL,      /* wait map full: a contention was not recorded */
  LC_DROP_RETRIES_FULL,    /* retry map full: an EAGAIN wait was not counted */
  LC_DROP_RELEASES_FULL,   /* release map full: a release was not recorded */
  LC_DROP_INIT_FULL,       /* init map full */
  LC_DROP_STACK_LOST,      /* a stack could not be stored */
  LC_DROP_MAX
};

#endif
