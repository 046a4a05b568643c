#include <catch2/catch.hpp>

#include "../unavailable.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/process.h"
#include "core/util.h"

using namespace lockkit;
using Catch::Matchers::Contains;

namespace {

// A second thread of this process, alive for the test's scope.
class Helper {
 public:
  Helper() : t_([this] {
    std::unique_lock<std::mutex> l(m_);
    tid_ = pid_t(syscall(SYS_gettid));
    cv_.notify_all();
    cv_.wait(l, [this] { return done_; });
  }) {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [this] { return tid_ != 0; });
  }
  ~Helper() {
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    cv_.notify_all();
    t_.join();
  }
  pid_t tid() const { return tid_; }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  pid_t tid_ = 0;
  bool done_ = false;
  std::thread t_;
};

// Some kernel thread visible here (kthreadd is pid 2 in the initial pid namespace), or 0.
pid_t find_kernel_thread() {
  if (is_kernel_thread(2)) return 2;
  DIR* d = opendir("/proc");
  pid_t found = 0;
  while (dirent* e = d ? readdir(d) : nullptr) {
    auto pid = parse_int(e->d_name);
    if (pid && *pid > 0 && is_kernel_thread(pid_t(*pid))) {
      found = pid_t(*pid);
      break;
    }
  }
  if (d) closedir(d);
  return found;
}

}  // namespace

TEST_CASE("proc stat parsing takes the command from the first ( to the last )") {
  auto st = parse_proc_stat("42 (a (b) c) d) S 1 2 3 4 5 2097216 7 8\n");
  REQUIRE(st);
  CHECK(st->comm == "a (b) c) d");
  CHECK(st->state == 'S');
  CHECK(st->flags == 2097216);
  CHECK((st->flags & kPfKthread) != 0);
}

TEST_CASE("proc stat parsing refuses truncated text") {
  CHECK_FALSE(parse_proc_stat("42 (sleep) S 1 2").has_value());
  CHECK_FALSE(parse_proc_stat("42 sleep S 1 2 3 4 5 0").has_value());
  CHECK_FALSE(parse_proc_stat("").has_value());
}

TEST_CASE("this process is not a kernel thread") {
  CHECK_FALSE(is_kernel_thread(getpid()));
}

TEST_CASE("a tid alone resolves to its process") {
  Helper h;
  TargetIds ids = resolve_target_ids(0, h.tid());
  CHECK(ids.pid == getpid());
  CHECK(ids.tid == h.tid());
}

TEST_CASE("a tid of the given pid is accepted") {
  Helper h;
  CHECK(resolve_target_ids(getpid(), h.tid()).pid == getpid());
}

TEST_CASE("a tid of another process is a usage error naming its process") {
  Helper h;
  pid_t other = getppid();
  try {
    resolve_target_ids(other, h.tid());
    FAIL("no error");
  } catch (const UsageError& e) {
    CHECK_THAT(std::string(e.what()), Contains(std::to_string(h.tid()) + " belongs to pid " + std::to_string(getpid())));
  }
}

TEST_CASE("a tid that does not exist is a run-time error") {
  try {
    resolve_target_ids(0, 4194304);
    FAIL("no error");
  } catch (const ToolError& e) {
    CHECK(e.code() == 1);
    CHECK_THAT(std::string(e.what()), Contains("no thread with tid 4194304"));
  }
}

TEST_CASE("no tid leaves the pid as given") {
  TargetIds ids = resolve_target_ids(1234, 0);
  CHECK(ids.pid == 1234);
  CHECK(ids.tid == 0);
}

TEST_CASE("attaching to a kernel thread is refused by default and names it") {
  pid_t k = find_kernel_thread();
  if (!k) {
    LOCKKIT_UNAVAILABLE("no kernel thread visible in /proc here");
    return;
  }
  try {
    Target::attach(k);
    FAIL("attached to a kernel thread");
  } catch (const ToolError& e) {
    CHECK_THAT(std::string(e.what()), Contains(fmt::format("pid {} (", k)) &&
                                          Contains(") is a kernel thread: it has no user space to trace"));
  }
}

TEST_CASE("attaching to a kernel thread is allowed when asked for") {
  pid_t k = find_kernel_thread();
  if (!k) {
    LOCKKIT_UNAVAILABLE("no kernel thread visible in /proc here");
    return;
  }
  Target t = Target::attach(k, KernelThreads::Allow);
  CHECK(t.pid() == k);
}

TEST_CASE("attaching to this process still works") {
  Target t = Target::attach(getpid());
  CHECK(t.pid() == getpid());
}

TEST_CASE("pthread library candidates are recognised under any glibc or musl file name") {
  CHECK(classify_pthread_candidate("/lib/x86_64-linux-gnu/libpthread.so.0") == PthreadCandidate::Libpthread);
  CHECK(classify_pthread_candidate("/srv/root/lib/x86_64-linux-gnu/libpthread-2.31.so") == PthreadCandidate::Libpthread);
  CHECK(classify_pthread_candidate("/lib64/libpthread-2.17.so") == PthreadCandidate::Libpthread);
  CHECK(classify_pthread_candidate("/lib/x86_64-linux-gnu/libc.so.6") == PthreadCandidate::Libc);
  CHECK(classify_pthread_candidate("/lib/x86_64-linux-gnu/libc-2.31.so") == PthreadCandidate::Libc);
  CHECK(classify_pthread_candidate("/lib/ld-musl-x86_64.so.1") == PthreadCandidate::Libc);
  CHECK(classify_pthread_candidate("/usr/lib/libc.musl-x86_64.so.1") == PthreadCandidate::Libc);
}

TEST_CASE("libraries whose names only begin like libc are not pthread candidates") {
  for (auto p : {"/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/lib/x86_64-linux-gnu/libcap.so.2",
                 "/lib/x86_64-linux-gnu/libcom_err.so.2", "/usr/lib/libc", "/usr/lib/locale/libc.mo",
                 "/usr/lib/x86_64-linux-gnu/libpthreadpool.so.0", "/opt/app/libc"})
    CHECK(classify_pthread_candidate(p) == PthreadCandidate::None);
}

TEST_CASE("pthread candidates from maps: libpthread before libc, each file once, under the root") {
  const char* maps =
      "55d0c0000000-55d0c0001000 r--p 00000000 08:01 100 /srv/b/usr/bin/app\n"
      "7f0000000000-7f0000020000 r--p 00000000 08:01 200 /srv/b/lib/x86_64-linux-gnu/libc-2.31.so\n"
      "7f0000020000-7f0000100000 r-xp 00020000 08:01 200 /srv/b/lib/x86_64-linux-gnu/libc-2.31.so\n"
      "7f0000200000-7f0000206000 r--p 00000000 08:01 300 /srv/b/lib/x86_64-linux-gnu/libpthread-2.31.so\n"
      "7f0000206000-7f0000217000 r-xp 00006000 08:01 300 /srv/b/lib/x86_64-linux-gnu/libpthread-2.31.so\n"
      "7f0000300000-7f0000400000 r-xp 00000000 08:01 400 /usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"
      "7f0000500000-7f0000501000 rw-p 00000000 00:00 0 \n"
      "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n";
  auto c = pthread_candidates(maps, "/proc/42/root");
  REQUIRE(c.size() == 2);
  CHECK(c[0] == "/proc/42/root/srv/b/lib/x86_64-linux-gnu/libpthread-2.31.so");
  CHECK(c[1] == "/proc/42/root/srv/b/lib/x86_64-linux-gnu/libc-2.31.so");
}

TEST_CASE("a deleted library in maps is still a candidate under its name") {
  auto c = pthread_candidates("7f0000000000-7f0000020000 r-xp 00000000 08:01 200 /lib/libc.so.6 (deleted)\n", "");
  REQUIRE(c.size() == 1);
  CHECK(c[0] == "/lib/libc.so.6");
}

TEST_CASE("a dynamic program's pthread functions are in a shared library, not in the program") {
  auto lib = resolve_pthread_library(0, "/proc/self/exe", "");
  CHECK_FALSE(lib.static_program);
  CHECK(classify_pthread_candidate(lib.path) != PthreadCandidate::None);
}

TEST_CASE("a statically linked program holds its own pthread functions") {
  std::string exe = std::string(WORKLOAD_DIR) + "/lockwork-static";
  if (!path_exists(exe)) {
    LOCKKIT_UNAVAILABLE("lockwork-static not built (no static C library)");
    return;
  }
  auto lib = resolve_pthread_library(0, exe, "");
  CHECK(lib.path == exe);
  CHECK(lib.static_program);
  // Named with --binary, the program is still known to be static.
  CHECK(resolve_pthread_library(0, exe, exe).static_program);
}

TEST_CASE("a stripped static program is an error, not a silent trace of another libc") {
  std::string exe = std::string(WORKLOAD_DIR) + "/lockwork-static";
  if (!path_exists(exe)) {
    LOCKKIT_UNAVAILABLE("lockwork-static not built (no static C library)");
    return;
  }
  char dir[] = "/tmp/lockkit-strip-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string stripped = std::string(dir) + "/app-static";
  REQUIRE(std::system(fmt::format("strip -o {} {}", stripped, exe).c_str()) == 0);
  CHECK_THROWS_WITH(resolve_pthread_library(0, stripped, ""), Contains("is statically linked"));
  std::remove(stripped.c_str());
  rmdir(dir);
}
