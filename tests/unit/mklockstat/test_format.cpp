// Lock types from the tracepoint flags, the log's lines, kernel frames, lock names, the summary.
#include <catch2/catch.hpp>

#include <sstream>

#include "core/kallsyms.h"
#include "mklockstat/model.h"
#include "mklockstat/report.h"

using namespace lockkit;
using namespace lockkit::mklockstat;

namespace {

Sample sample(int32_t stackid = 3) {
  Sample s;
  s.start = 1093900000000ull;
  s.pid = 12181;
  s.tid = 12185;
  s.lock = 0xffff888172ce4578ull;
  s.type = MK_T_SEM_W;
  s.wait_ns = 35866818;
  s.count = 4;
  s.stackid = stackid;
  s.comm = "mmap_contend";
  return s;
}

}  // namespace

TEST_CASE("contention_begin flags map to lock type names") {
  CHECK(flags_type_name(0) == "Semaphore");
  CHECK(flags_type_name(MK_F_READ) == "Semaphore:R");
  CHECK(flags_type_name(MK_F_WRITE) == "Semaphore:W");
  CHECK(flags_type_name(MK_F_SPIN) == "Spinlock");
  CHECK(flags_type_name(MK_F_SPIN | MK_F_READ) == "RWLock:R");
  CHECK(flags_type_name(MK_F_SPIN | MK_F_WRITE) == "RWLock:W");
  CHECK(flags_type_name(MK_F_MUTEX) == "Mutex");
  CHECK(flags_type_name(MK_F_RT) == "RTMutex");
  CHECK(flags_type_name(MK_F_RT | MK_F_READ) == "RTMutex:R");
  CHECK(flags_type_name(MK_F_RT | MK_F_WRITE) == "RTMutex:W");
  CHECK(flags_type_name(MK_F_PERCPU | MK_F_READ) == "PercpuRWSem:R");
  CHECK(flags_type_name(MK_F_PERCPU | MK_F_WRITE) == "PercpuRWSem:W");
}

TEST_CASE("a mutex spinning before it sleeps is one type: Mutex") {
  CHECK(mk_type_from_flags(MK_F_MUTEX | MK_F_SPIN) == mk_type_from_flags(MK_F_MUTEX));
}

TEST_CASE("unknown flag combinations keep their flags in the name") {
  CHECK(flags_type_name(MK_F_PERCPU) == "Unknown_0x10");
  CHECK(flags_type_name(0x40) == "Unknown_0x40");
}

TEST_CASE("a sample line names the pid after P and the tid after T") {
  CHECK(format_sample(sample(), false) ==
        "s,mmap_contend,P12181_T12185,Semaphore:W,0xffff888172ce4578,1093900000000,35866818,4,3");
}

TEST_CASE("the names option adds a tenth field, empty when the lock has no symbol") {
  CHECK(format_sample(sample(), true, "text_mutex") ==
        "s,mmap_contend,P12181_T12185,Semaphore:W,0xffff888172ce4578,1093900000000,35866818,4,3,text_mutex");
  CHECK(format_sample(sample(), true) ==
        "s,mmap_contend,P12181_T12185,Semaphore:W,0xffff888172ce4578,1093900000000,35866818,4,3,");
}

TEST_CASE("a lost stack is printed as its negative id") {
  CHECK(format_sample(sample(-17), false) ==
        "s,mmap_contend,P12181_T12185,Semaphore:W,0xffff888172ce4578,1093900000000,35866818,4,-17");
}

TEST_CASE("commas and control characters in commands cannot split a line") {
  Sample s = sample();
  s.comm = "a,b\nc";
  CHECK(format_sample(s, false).rfind("s,a_b_c,P12181_T12185,", 0) == 0);
}

TEST_CASE("a stack line lists its frames leaf first") {
  CHECK(format_stack(7, {"rwsem_down_write_slowpath+0x3cc", "down_write_killable+0x5c"}) ==
        "t,7,rwsem_down_write_slowpath+0x3cc,down_write_killable+0x5c");
}

TEST_CASE("kernel frames resolve return addresses at ip-1 and show unknown addresses") {
  KernelSymbols k = KernelSymbols::parse(
      "ffffffff81000000 T leaf_fn\n"
      "ffffffff81000100 T caller_fn\n"
      "ffffffff81000200 T next_fn\n");
  // 0xffffffff81000200 as a return address: the call was the last instruction of caller_fn.
  auto frames = kernel_frames({0xffffffff81000010ull, 0xffffffff81000200ull, 0x10ull},
                              [&](uint64_t a) { return k.resolve(a); });
  REQUIRE(frames.size() == 3);
  CHECK(frames[0] == "leaf_fn+0x10");
  CHECK(frames[1] == "caller_fn+0x100");
  CHECK(frames[2] == "[unknown] 0x10");
}

TEST_CASE("lock names skip section boundary markers") {
  CHECK(lock_name(std::string("text_mutex")) == std::optional<std::string>("text_mutex"));
  CHECK(lock_name(std::string("__start_once+0x40")) == std::nullopt);
  CHECK(lock_name(std::string("__stop___bug_table+0x8")) == std::nullopt);
  CHECK(lock_name(std::nullopt) == std::nullopt);
}

TEST_CASE("the log prints each stack once, right before its first sample") {
  std::ostringstream os;
  int asked = 0;
  LogWriter w(
      os,
      [&](int32_t id) {
        asked++;
        return std::vector<std::string>{"f" + std::to_string(id) + "+0x1", "g+0x2"};
      },
      false, nullptr);
  Sample a = sample(3), b = sample(-14), c = sample(3), d = sample(5);
  c.start += 50000000;
  d.start += 50000000;
  w.write({a, b});
  w.write({c, d});
  std::string s1 = format_sample(a, false), s2 = format_sample(b, false), s3 = format_sample(c, false),
              s4 = format_sample(d, false);
  CHECK(os.str() == "t,3,f3+0x1,g+0x2\n" + s1 + "\n" + s2 + "\n" + s3 + "\nt,5,f5+0x1,g+0x2\n" + s4 + "\n");
  CHECK(asked == 2);
  CHECK(w.samples() == 4);
  CHECK(w.stacks() == 2);
  CHECK(w.lost_stack_samples() == 1);
  CHECK(w.periods() == 2);
}

TEST_CASE("the log asks for each lock's name once") {
  std::ostringstream os;
  int asked = 0;
  LogWriter w(
      os, [](int32_t) { return std::vector<std::string>{"f+0x1"}; }, true,
      [&](uint64_t) -> std::optional<std::string> {
        asked++;
        return std::nullopt;
      });
  w.write({sample(), sample()});
  CHECK(asked == 1);
  CHECK(os.str().find(",3,\n") != std::string::npos);
}

TEST_CASE("the summary shows waits, losses and late samples") {
  RunSummary s;
  s.why = "time is up";
  s.seconds = 10.04;
  s.period_ns = 50000000;
  s.samples = 618;
  s.periods = 201;
  s.stacks = 5;
  s.waits = 1982;
  s.lost_samples = 2;
  s.lost_stacks = 1;
  s.late = 3;
  CHECK(summary_text(s) ==
        "mklockstat: time is up after 10.0 s: 618 samples in 201 periods of 50 ms, 5 stacks; 1982 waits; "
        "lost: 2 samples, 1 stacks; 3 samples printed late (out of order)");
}

TEST_CASE("what the run lost is also warned about in the shared words, and nothing when nothing was lost") {
  RunSummary s;
  s.waits = 10;
  CHECK(diagnostics(s).empty());
  s.lost_samples = 2;
  s.not_recorded = 4;
  s.lost_stacks = 1;
  CHECK(diagnostic_lines(diagnostics(s)) ==
        std::vector<std::string>{
            "WARNING: 2 samples were lost: the perf buffer overflowed or a sample could not be read",
            "WARNING: 4 waits were not recorded: a BPF map is full",
            "WARNING: 1 stack traces could not be stored; a larger --stack-storage-size keeps more"});
}

TEST_CASE("lock types read as the other tools' lowercase kinds") {
  CHECK(kind_name(MK_T_MUTEX) == "mutex");
  CHECK(kind_name(MK_T_SEM) == "semaphore");
  CHECK(kind_name(MK_T_SEM_R) == "rwsem-read");
  CHECK(kind_name(MK_T_SEM_W) == "rwsem-write");
  CHECK(kind_name(MK_T_SPIN) == "spinlock");
  CHECK(kind_name(MK_T_RWLOCK_R) == "rwlock-read");
  CHECK(kind_name(MK_T_RWLOCK_W) == "rwlock-write");
  CHECK(kind_name(MK_T_RTMUTEX) == "rtmutex");
  CHECK(kind_name(MK_T_RTMUTEX_W) == "rtmutex-write");
  CHECK(kind_name(MK_T_PERCPU_R) == "percpu-rwsem-read");
  CHECK(kind_name(mk_type_from_flags(MK_F_PERCPU)) == "unknown-0x10");
}

TEST_CASE("the profile has one sample per log line with its values, labels and first stack") {
  Sample a = sample(3), b = sample(-2), c = sample(3);
  b.type = MK_T_SPIN;
  b.lock = 0xffffffff831113e0ull;
  c.start += 50000000;
  c.count = 1;
  c.wait_ns = 700;
  int asked = 0;
  ProfileSource src;
  src.frames = [&](int32_t id) {
    asked++;
    return std::vector<Frame>{named_frame("rwsem_down_write_slowpath", "[kernel.kallsyms]"),
                              named_frame("f" + std::to_string(id), "[kernel.kallsyms]")};
  };
  src.name = [](uint64_t lock) -> std::optional<std::string> {
    if (lock == 0xffffffff831113e0ull) return std::string("text_mutex");
    return std::nullopt;
  };
  ProfileData p = samples_profile({a, b, c}, src);
  REQUIRE(p.sample_types.size() == 2);
  CHECK(p.sample_types[0].type == "contentions");
  CHECK(p.sample_types[1].unit == "nanoseconds");
  CHECK(p.default_sample_type == "delay");
  REQUIRE(p.samples.size() == 3);
  CHECK(asked == 1);  // stack 3 named once
  CHECK(p.samples[0].values == std::vector<int64_t>{4, 35866818});
  CHECK(p.samples[2].values == std::vector<int64_t>{1, 700});
  REQUIRE(p.samples[0].frames.size() == 2);
  CHECK(p.samples[0].frames[1].function == "f3");
  REQUIRE(p.samples[1].frames.size() == 1);
  CHECK(p.samples[1].frames[0].function == "[lost stack]");
  auto label = [](const ProfileSample& s, const std::string& key) -> const ProfileLabel& {
    for (auto& l : s.labels)
      if (l.key == key) return l;
    FAIL("no label " << key);
    throw;
  };
  CHECK(label(p.samples[0], "lock").str == "0xffff888172ce4578");
  CHECK(label(p.samples[0], "kind").str == "rwsem-write");
  CHECK(label(p.samples[0], "address").str == "0xffff888172ce4578");
  CHECK(label(p.samples[0], "comm").str == "mmap_contend");
  CHECK(label(p.samples[0], "pid").num == 12181);
  CHECK(label(p.samples[0], "tid").num == 12185);
  CHECK(label(p.samples[0], "period_start").num == 1093900000000);
  CHECK(label(p.samples[0], "period_start").unit == "nanoseconds");
  CHECK(label(p.samples[2], "period_start").num == 1093950000000);
  CHECK(label(p.samples[1], "lock").str == "text_mutex");
  CHECK(label(p.samples[1], "kind").str == "spinlock");
  CHECK(label(p.samples[1], "address").str == "0xffffffff831113e0");
}
