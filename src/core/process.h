// The traced process: attach to a running pid or start a command paused until probes are in place;
// notice when it exits; stop on SIGINT/SIGTERM/SIGHUP; find the library holding pthread functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lockkit {

// Blocks SIGINT, SIGTERM and SIGHUP for the whole process and reads them from a signalfd, so a
// signal can never interrupt the tool half-way: it ends the wait loop and the tool reports and
// detaches. Create it first thing in main(), before any thread starts.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  int fd() const { return fd_; }
  // The signal that arrived, or 0.
  int take();
  // When a stop signal arrived before `what` (nothing attached yet, nothing to report), throws
  // ToolError "interrupted before <what>" with exit status 128+signal.
  void throw_if_stopped(const std::string& what);

 private:
  int fd_ = -1;
};

// Whether a kernel thread (no user space: no maps, no executable) is a process a tool can follow.
enum class KernelThreads { Refuse, Allow };

class Target {
 public:
  // Follows an existing process. Throws ToolError when it does not exist, or when it is a kernel
  // thread and `kthreads` is Refuse (the default: uprobes and futexes need a user space);
  // UsageError when `pid` is a thread id.
  static Target attach(pid_t pid, KernelThreads kthreads = KernelThreads::Refuse);
  // Starts argv[0] (searched in PATH) with signals restored, held before exec until release().
  static Target spawn(const std::vector<std::string>& argv);
  Target(Target&&) noexcept;
  Target& operator=(Target&&) = delete;
  ~Target();

  pid_t pid() const { return pid_; }
  bool spawned() const { return spawned_; }
  // Absolute path of the program (the command's resolved path, or /proc/PID/exe).
  const std::string& exe() const { return exe_; }
  int pidfd() const { return pidfd_; }
  // Lets a spawned command exec. Throws ToolError when exec fails (e.g. permission denied).
  void release();
  bool exited();
  // Exit status of a spawned command once it exited (shell convention for signals: 128+N).
  std::optional<int> exit_status() const { return status_; }
  // True once the process runs the expected program (after exec for spawned commands).
  bool running_program() const;

 private:
  Target() = default;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int go_fd_ = -1;    // spawned: write end the child waits on
  int err_fd_ = -1;   // spawned: CLOEXEC pipe carrying exec's errno
  bool spawned_ = false;
  bool released_ = false;
  std::string exe_;
  std::optional<int> status_;
};

enum class Wake { Timeout, Signal, TargetExit, Ready };

// Waits until `deadline_ns` (monotonic), a stop signal, the target's exit, or (Ready) `ready_fd`
// becoming readable (-1: none).
Wake wait_until(uint64_t deadline_ns, StopSignals& sig, Target* target, int ready_fd = -1);

// Resolves a command name through PATH as execvp would. Throws UsageError when not found.
std::string resolve_command(const std::string& name);

// Which part of a C library a mapped file's name says it is. Names vary with the glibc version and
// the distribution: libpthread.so.0 or libpthread-2.31.so (glibc < 2.34 maps the real file name),
// libc.so.6 or libc-2.31.so, musl's libc.musl-x86_64.so.1 or ld-musl-x86_64.so.1. Other libraries
// whose names merely begin with "libc" (libcrypto, libcap, libcom_err) are neither.
enum class PthreadCandidate { None, Libpthread, Libc };
PthreadCandidate classify_pthread_candidate(const std::string& path);

// The distinct files in /proc/PID/maps text that may hold the pthread functions, prefixed with
// `root`, in order of preference: libpthread files first (before glibc 2.34 libc.so.6 also exports
// forwarding pthread_mutex_lock stubs, but programs bind to libpthread's), then libc files, each in
// mapping order.
std::vector<std::string> pthread_candidates(const std::string& maps_text, const std::string& root);

struct PthreadLibrary {
  std::string path;
  // The program is statically linked: the file is its executable, which holds only the pthread
  // functions it uses. A function the file lacks cannot be called, so it has nothing to probe.
  bool static_program = false;
};

// The file whose pthread_mutex_lock the target runs: `override_path` when given; the executable
// when it defines pthread_mutex_lock itself (static); else the first of pthread_candidates() of the
// target's maps (ours for a command not yet started) that defines pthread_mutex_lock.
PthreadLibrary resolve_pthread_library(pid_t pid, const std::string& exe, const std::string& override_path);

bool process_exists(pid_t pid);
// The prefix under which the files a process names in /proc/PID/maps are found from here: "" when
// it shares our mount namespace, else "/proc/PID/root" (containers).
std::string process_root(pid_t pid);
// The process (thread group) a thread belongs to, from /proc/TID/status; nullopt when it is gone.
std::optional<pid_t> tgid_of(pid_t tid);

// The -p/-t rule every tool shares. `pid` and `tid` are 0 when not given. With a tid, the result's
// pid is the process it belongs to: ToolError when there is no such thread, UsageError when `pid`
// is given and is not that process.
struct TargetIds {
  pid_t pid = 0;
  pid_t tid = 0;
};
TargetIds resolve_target_ids(pid_t pid, pid_t tid);

// The fields of /proc/PID/stat a tool needs. The command may hold spaces and parentheses: it runs
// from the first '(' to the last ')'.
struct ProcStat {
  std::string comm;
  char state = '?';
  unsigned long flags = 0;  // field 9: PF_* flags
};
std::optional<ProcStat> parse_proc_stat(const std::string& text);
constexpr unsigned long kPfKthread = 0x00200000;  // PF_KTHREAD
// True when /proc/PID/stat says `pid` is a kernel thread; false when it is not or is gone.
bool is_kernel_thread(pid_t pid);

}  // namespace lockkit
