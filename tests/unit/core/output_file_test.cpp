// OutputFile replaces its target atomically: nothing changes on disk until commit().
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "core/output.h"
#include "core/util.h"

using namespace lockkit;
namespace fs = std::filesystem;

namespace {

// A fresh directory, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lockkit-out-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(mkdtemp(buf.data()) != nullptr);
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// The message of the ToolError `f` throws, or nullopt when it does not throw one.
template <class F>
std::optional<std::string> tool_error(F f) {
  try {
    f();
  } catch (const ToolError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("an uncommitted output leaves an existing file unchanged") {
  TempDir d;
  write_text(d / "keep.json", "old content\n");
  {
    OutputFile out(d / "keep.json");
    out.stream() << "new content that is never committed\n";
    out.stream().flush();
  }
  CHECK(read_file(d / "keep.json") == std::optional<std::string>("old content\n"));
}

TEST_CASE("an output abandoned by an exception leaves no temporary behind") {
  TempDir d;
  write_text(d / "keep.json", "old");
  try {
    OutputFile out(d / "keep.json");
    out.stream() << "partial";
    throw ToolError("the run failed");
  } catch (const ToolError&) {
  }
  CHECK(d.names() == std::vector<std::string>{"keep.json"});
}

TEST_CASE("the temporary is a hidden file named after the target in the same directory") {
  TempDir d;
  OutputFile out(d / "log.txt");
  CHECK(starts_with(out.temporary(), ".log.txt.lockkit-"));
  CHECK(out.temporary().size() == std::string(".log.txt.lockkit-").size() + 6);
  CHECK(path_exists(d / out.temporary()));
  CHECK_FALSE(path_exists(d / "log.txt"));
}

TEST_CASE("commit replaces the file with the whole content") {
  TempDir d;
  write_text(d / "out.json", "old content that is longer than the new one\n");
  OutputFile out(d / "out.json");
  out.stream() << "new\n";
  out.commit();
  CHECK(read_file(d / "out.json") == std::optional<std::string>("new\n"));
}

TEST_CASE("a committed output leaves no temporary behind") {
  TempDir d;
  {
    OutputFile out(d / "out.json");
    out.stream() << "x";
    out.commit();
  }
  CHECK(d.names() == std::vector<std::string>{"out.json"});
}

TEST_CASE("a replaced file keeps its permission bits") {
  TempDir d;
  write_text(d / "out.csv", "old");
  REQUIRE(chmod((d / "out.csv").c_str(), 0604) == 0);
  OutputFile out(d / "out.csv");
  out.stream() << "new";
  out.commit();
  CHECK(mode_of(d / "out.csv") == 0604);
}

TEST_CASE("a new output file is created 0644 under the umask") {
  TempDir d;
  mode_t old = umask(027);
  {
    OutputFile out(d / "new.txt");
    out.commit();
  }
  umask(old);
  CHECK(mode_of(d / "new.txt") == 0640);
}

TEST_CASE("a symlink planted at the temporary's name is not followed") {
  TempDir d;
  write_text(d / "victim", "precious");
  REQUIRE(symlink((d / "victim").c_str(), (d / ".out.lockkit-AAAAAA").c_str()) == 0);
  int dir_fd = open(d.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(dir_fd >= 0);
  std::vector<std::string> suffixes{"AAAAAA", "BBBBBB"};
  size_t next = 0;
  std::string name;
  int fd = detail::create_temporary(dir_fd, "out", 0644, &name, [&] { return suffixes.at(next++); });
  REQUIRE(fd >= 0);
  CHECK(write(fd, "attack", 6) == 6);
  close(fd);
  close(dir_fd);
  CHECK(name == ".out.lockkit-BBBBBB");
  CHECK(read_file(d / "victim") == std::optional<std::string>("precious"));
  CHECK(fs::is_symlink(d / ".out.lockkit-AAAAAA"));
}

TEST_CASE("a symlink at the output path is refused, not followed") {
  TempDir d;
  write_text(d / "victim", "precious");
  REQUIRE(symlink((d / "victim").c_str(), (d / "out.json").c_str()) == 0);
  auto err = tool_error([&] { OutputFile out(d / "out.json"); });
  REQUIRE(err);
  CHECK(err->find(d / "out.json") != std::string::npos);
  CHECK(read_file(d / "victim") == std::optional<std::string>("precious"));
  CHECK(fs::is_symlink(d / "out.json"));
  CHECK(d.names() == std::vector<std::string>{"out.json", "victim"});
}

TEST_CASE("a missing directory fails at construction naming the path and the reason") {
  TempDir d;
  std::string path = d / "no/such/dir/out.json";
  auto err = tool_error([&] { OutputFile out(path); });
  REQUIRE(err);
  CHECK(err->find(path) != std::string::npos);
  CHECK(err->find(std::strerror(ENOENT)) != std::string::npos);
}

TEST_CASE("an unwritable directory fails at construction") {
  TempDir d;
  REQUIRE(chmod(d.path.c_str(), 0755) == 0);
  REQUIRE(mkdir((d / "ro").c_str(), 0555) == 0);
  std::string path = d / "ro/out.json";
  auto attempt = [&] {
    auto err = tool_error([&] { OutputFile out(path); });
    return err && err->find(path) != std::string::npos && err->find(std::strerror(EACCES)) != std::string::npos;
  };
  if (geteuid() != 0) {
    CHECK(attempt());
    return;
  }
  // Root writes anywhere: try as an unprivileged user, in a child.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(attempt() ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a directory as the output path fails at construction") {
  TempDir d;
  CHECK(tool_error([&] { OutputFile out(d.path); }));
  CHECK(tool_error([&] { OutputFile out(d.path + "/"); }));
}

TEST_CASE("a write error is reported by commit and the old file survives") {
  TempDir d;
  write_text(d / "out.log", "old");
  struct rlimit saved;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  std::optional<std::string> err;
  {
    OutputFile out(d / "out.log");
    struct rlimit small = saved;
    small.rlim_cur = 4096;  // like a full disk: writes beyond 4 KiB fail with EFBIG
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    out.stream() << std::string(100000, 'x');
    err = tool_error([&] { out.commit(); });
    setrlimit(RLIMIT_FSIZE, &saved);
  }
  std::signal(SIGXFSZ, old_handler);
  REQUIRE(err);
  CHECK(err->find(d / "out.log") != std::string::npos);
  CHECK(err->find(std::strerror(EFBIG)) != std::string::npos);
  CHECK(read_file(d / "out.log") == std::optional<std::string>("old"));
  CHECK(d.names() == std::vector<std::string>{"out.log"});
}

TEST_CASE("a FIFO is written in place, not replaced") {
  TempDir d;
  std::string fifo = d / "pipe";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  {
    OutputFile out(fifo);
    CHECK(out.temporary().empty());
    out.stream() << "through the pipe";
    out.commit();
  }
  char buf[64] = {};
  ssize_t n = read(reader, buf, sizeof(buf));
  close(reader);
  CHECK(std::string(buf, n > 0 ? size_t(n) : 0) == "through the pipe");
  struct stat st;
  REQUIRE(lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(d.names() == std::vector<std::string>{"pipe"});
}

TEST_CASE("a forked child that destroys an output leaves the parent's temporary alone") {
  TempDir d;
  OutputFile out(d / "out.txt");
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    { OutputFile copy_in_child(d / "other.txt"); }  // its own temporary goes
    out.~OutputFile();                              // the parent's, inherited, must stay
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(path_exists(d / out.temporary()));
  out.stream() << "done";
  out.commit();
  CHECK(read_file(d / "out.txt") == std::optional<std::string>("done"));
}
