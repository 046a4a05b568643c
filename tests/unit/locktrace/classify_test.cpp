// Classification of futex operations (probes/locktrace.h, shared with the BPF program).
#include <catch2/catch.hpp>

#include "locktrace.h"

TEST_CASE("futex wait-family commands classify as waits") {
  for (int op : {LT_FUTEX_WAIT, LT_FUTEX_WAIT_BITSET, LT_FUTEX_LOCK_PI, LT_FUTEX_LOCK_PI2,
                 LT_FUTEX_WAIT_REQUEUE_PI, LT_FUTEX_TRYLOCK_PI}) {
    INFO("op " << op);
    CHECK(lt_classify(LT_SYS_FUTEX, __u64(op)) == LT_CLASS_WAIT);
  }
}

TEST_CASE("futex wake-family commands classify as wakes") {
  for (int op : {LT_FUTEX_WAKE, LT_FUTEX_WAKE_OP, LT_FUTEX_REQUEUE, LT_FUTEX_CMP_REQUEUE,
                 LT_FUTEX_UNLOCK_PI, LT_FUTEX_WAKE_BITSET, LT_FUTEX_CMP_REQUEUE_PI}) {
    INFO("op " << op);
    CHECK(lt_classify(LT_SYS_FUTEX, __u64(op)) == LT_CLASS_WAKE);
  }
}

TEST_CASE("the private and realtime-clock flags are stripped before classifying") {
  CHECK(lt_classify(LT_SYS_FUTEX, LT_FUTEX_WAIT | LT_FUTEX_PRIVATE_FLAG) == LT_CLASS_WAIT);
  CHECK(lt_classify(LT_SYS_FUTEX, LT_FUTEX_WAIT_BITSET | LT_FUTEX_PRIVATE_FLAG | LT_FUTEX_CLOCK_REALTIME) ==
        LT_CLASS_WAIT);
  CHECK(lt_classify(LT_SYS_FUTEX, LT_FUTEX_WAKE | LT_FUTEX_PRIVATE_FLAG) == LT_CLASS_WAKE);
  CHECK(lt_classify(LT_SYS_FUTEX, LT_FUTEX_UNLOCK_PI | LT_FUTEX_PRIVATE_FLAG) == LT_CLASS_WAKE);
}

TEST_CASE("FUTEX_FD and unknown commands classify as other") {
  CHECK(lt_classify(LT_SYS_FUTEX, LT_FUTEX_FD) == LT_CLASS_OTHER);
  CHECK(lt_classify(LT_SYS_FUTEX, 14) == LT_CLASS_OTHER);
  CHECK(lt_classify(LT_SYS_FUTEX, 77 | LT_FUTEX_PRIVATE_FLAG) == LT_CLASS_OTHER);
}

TEST_CASE("futex2 calls classify by system call, whatever op holds") {
  CHECK(lt_classify(LT_SYS_FUTEX_WAIT, LT_FUTEX_WAKE) == LT_CLASS_WAIT);
  CHECK(lt_classify(LT_SYS_FUTEX_WAITV, 0) == LT_CLASS_WAIT);
  CHECK(lt_classify(LT_SYS_FUTEX_WAKE, LT_FUTEX_WAIT) == LT_CLASS_WAKE);
  CHECK(lt_classify(LT_SYS_FUTEX_REQUEUE, 0) == LT_CLASS_WAKE);
}
