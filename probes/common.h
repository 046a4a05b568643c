/* Definitions shared by every probe program and by the C++ side that reads its maps.
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

#endif
