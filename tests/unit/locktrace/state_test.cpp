// The blocked/sys accounting of one futex call (probes/locktrace.h, shared with the BPF program),
// driven by the sched_switch events the kernel would send.
#include <catch2/catch.hpp>

#include "locktrace.h"
#include "locktrace/model.h"

namespace {

constexpr __s64 kMask = LT_DEFAULT_STATE_MASK;
constexpr __s64 kSleeping = 0x1;         // S
constexpr __s64 kUninterruptible = 0x2;  // D
constexpr __s64 kPreempted = 0x100;      // TASK_REPORT_MAX on 6.x: "R+"

lt_call call_at(__u64 start, __u32 cls = LT_CLASS_WAIT) {
  lt_call c{};
  c.start_ns = start;
  c.cls = cls;
  return c;
}

struct Split {
  __u64 blocked, sys;
};

Split finish(const lt_call& c, __u64 now) {
  Split s{};
  lt_call_finish(&c, now, &s.blocked, &s.sys);
  return s;
}

}  // namespace

TEST_CASE("a preempted task's prev_state is not blocked but sleeping states are") {
  CHECK_FALSE(lt_state_blocked(0, kMask));
  CHECK_FALSE(lt_state_blocked(kPreempted, kMask));
  CHECK(lt_state_blocked(kSleeping, kMask));
  CHECK(lt_state_blocked(kUninterruptible, kMask));
  CHECK(lt_state_blocked(0x80, kMask));  // I (idle kernel thread)
}

TEST_CASE("a call that never leaves the CPU is all sys time") {
  lt_call c = call_at(1000);
  Split s = finish(c, 1500);
  CHECK(s.blocked == 0);
  CHECK(s.sys == 500);
  CHECK(c.blocks == 0);
}

TEST_CASE("a wait that sleeps once: blocked is switch-out to switch-in, sys the rest") {
  lt_call c = call_at(1000);
  lt_call_switch_out(&c, kSleeping, kMask, 1200);
  lt_call_switch_in(&c, 9200);
  Split s = finish(c, 9300);
  CHECK(s.blocked == 8000);
  CHECK(s.sys == 300);
  CHECK(c.blocks == 1);
}

TEST_CASE("preempted-but-runnable time inside a call is sys time and the call still counts") {
  lt_call c = call_at(1000);
  lt_call_switch_out(&c, kPreempted, kMask, 1100);
  lt_call_switch_in(&c, 5100);
  Split s = finish(c, 5200);
  CHECK(s.blocked == 0);
  CHECK(s.sys == 4200);
  CHECK(c.preempts == 1);
  CHECK(c.blocks == 0);
  lt_stat_val v{};
  lt_stat_add(&v, c.cls, s.blocked, s.sys, c.blocks, 0);
  CHECK(v.wait_count == 1);
  CHECK(v.blocked_count == 0);
}

TEST_CASE("a wait blocked twice counts the sum of both intervals, not the last") {
  lt_call c = call_at(0);
  lt_call_switch_out(&c, kSleeping, kMask, 100);
  lt_call_switch_in(&c, 1100);   // 1000 blocked (e.g. a spurious wake-up, the wait loops)
  lt_call_switch_out(&c, kSleeping, kMask, 1200);
  lt_call_switch_in(&c, 3200);   // 2000 more
  Split s = finish(c, 3300);
  CHECK(s.blocked == 3000);
  CHECK(s.sys == 300);
  CHECK(c.blocks == 2);
}

TEST_CASE("a sleep followed by a preemption after wake-up: only the sleep is blocked") {
  lt_call c = call_at(0);
  lt_call_switch_out(&c, kSleeping, kMask, 100);
  lt_call_switch_in(&c, 600);
  lt_call_switch_out(&c, kPreempted, kMask, 700);
  lt_call_switch_in(&c, 2700);
  Split s = finish(c, 2800);
  CHECK(s.blocked == 500);
  CHECK(s.sys == 2300);
  CHECK(c.blocks == 1);
  CHECK(c.preempts == 1);
}

TEST_CASE("a wake call that sleeps (e.g. on a page fault) counts that time as sys, not blocked") {
  lt_call c = call_at(0, LT_CLASS_WAKE);
  lt_call_switch_out(&c, kUninterruptible, kMask, 100);
  lt_call_switch_in(&c, 900);
  Split s = finish(c, 1000);
  CHECK(s.blocked == 0);
  CHECK(s.sys == 1000);
}

TEST_CASE("blocked time never exceeds the call's duration") {
  lt_call c = call_at(1000);
  c.blocked_ns = 5000;  // inconsistent clocks must not make sys negative
  Split s = finish(c, 2000);
  CHECK(s.blocked == 1000);
  CHECK(s.sys == 0);
}

TEST_CASE("a row counts waits, blocked waits, wakes, errors and keeps the worst call") {
  lt_stat_val v{};
  lt_stat_add(&v, LT_CLASS_WAIT, 5000, 100, 1, 0);
  lt_stat_add(&v, LT_CLASS_WAIT, 0, 300, 0, -11);  // EAGAIN at once
  lt_stat_add(&v, LT_CLASS_WAKE, 0, 50, 0, 1);
  lt_stat_add(&v, LT_CLASS_OTHER, 0, 10, 0, -22);
  CHECK(v.blocked_ns == 5000);
  CHECK(v.sys_ns == 460);
  CHECK(v.max_blocked_ns == 5000);
  CHECK(v.max_sys_ns == 300);
  CHECK(v.wait_count == 2);
  CHECK(v.blocked_count == 1);
  CHECK(v.wake_count == 1);
  CHECK(v.other_count == 1);
  CHECK(v.errors == 2);
}

TEST_CASE("the not-runnable mask comes from sched_switch's format file") {
  // The print fmt of this kernel's sched:sched_switch (6.18), trimmed.
  const std::string fmt618 =
      "print fmt: \"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s\", "
      "REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001 | "
      "0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? "
      "__print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | "
      "0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), \"|\", { 0x00000001, \"S\" }, "
      "{ 0x00000002, \"D\" }, { 0x00000004, \"T\" }, { 0x00000008, \"t\" }, { 0x00000010, \"X\" }, "
      "{ 0x00000020, \"Z\" }, { 0x00000040, \"P\" }, { 0x00000080, \"I\" }) : \"R\", REC->prev_state";
  CHECK(lockkit::locktrace::state_mask_from_format(fmt618) == 0xff);
  // A kernel whose last reported state is 0x40 reports preemption as 0x80.
  CHECK(lockkit::locktrace::state_mask_from_format("{ 0x01, \"S\" }, { 0x40, \"P\" }") == 0x7f);
}

TEST_CASE("without a flag table the mask falls back to the default") {
  CHECK(lockkit::locktrace::state_mask_from_format("") == LT_DEFAULT_STATE_MASK);
  CHECK(lockkit::locktrace::state_mask_from_format("print fmt: \"%d\", REC->x") == LT_DEFAULT_STATE_MASK);
}
