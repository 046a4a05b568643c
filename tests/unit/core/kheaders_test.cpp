// The cached header tree: built once, in a private temporary, in a directory only root controls.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/kheaders.h"
#include "core/util.h"

using namespace lockkit;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lockkit-kh-XXXXXX").string();
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
};

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Minimal Debian-style "-common" and arch trees under `root`.
void make_header_pair(const TempDir& root) {
  for (auto dir : {"common", "common/include", "common/include/linux", "arch", "arch/include"})
    REQUIRE(mkdir((root / dir).c_str(), 0755) == 0);
  std::ofstream(root / "common/include/linux/kconfig.h") << "kconfig";
  std::ofstream(root / "arch/Makefile") << "arch";
}

template <class F>
std::string tool_error(F f) {
  try {
    f();
  } catch (const ToolError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the merged header tree reports that it was created only by the call that built it") {
  TempDir t;
  make_header_pair(t);
  std::string cache = t / "cache";
  CHECK(ensure_merged_tree(t / "common", t / "arch", cache, "kheaders-x"));
  CHECK(read_file(cache + "/kheaders-x/include/linux/kconfig.h") == std::optional<std::string>("kconfig"));
  CHECK(path_exists(cache + "/kheaders-x/.complete"));
  CHECK_FALSE(ensure_merged_tree(t / "common", t / "arch", cache, "kheaders-x"));
}

TEST_CASE("building the merged header tree leaves no temporary directory in the cache") {
  TempDir t;
  make_header_pair(t);
  std::string cache = t / "cache";
  ensure_merged_tree(t / "common", t / "arch", cache, "kheaders-x");
  CHECK(names_in(cache) == std::vector<std::string>{"kheaders-x"});
}

TEST_CASE("a header tree that cannot be installed leaves no temporary directory") {
  TempDir t;
  make_header_pair(t);
  std::string cache = t / "cache";
  REQUIRE(mkdir(cache.c_str(), 0755) == 0);
  std::ofstream(cache + "/kheaders-x") << "not a tree";  // holds the name; never complete
  std::string err = tool_error([&] { ensure_merged_tree(t / "common", t / "arch", cache, "kheaders-x"); });
  CHECK(err.find(cache + "/kheaders-x") != std::string::npos);
  CHECK(names_in(cache) == std::vector<std::string>{"kheaders-x"});
  CHECK(read_file(cache + "/kheaders-x") == std::optional<std::string>("not a tree"));
}

TEST_CASE("a cache directory that is a symlink is refused") {
  TempDir t;
  REQUIRE(mkdir((t / "elsewhere").c_str(), 0755) == 0);
  REQUIRE(symlink((t / "elsewhere").c_str(), (t / "cache").c_str()) == 0);
  std::string err = tool_error([&] { check_cache_dir(t / "cache"); });
  CHECK(err.find(t / "cache") != std::string::npos);
  CHECK(err.find("symbolic link") != std::string::npos);
}

TEST_CASE("a cache directory writable by others is refused") {
  TempDir t;
  REQUIRE(mkdir((t / "cache").c_str(), 0755) == 0);
  REQUIRE(chmod((t / "cache").c_str(), 01777) == 0);
  std::string err = tool_error([&] { check_cache_dir(t / "cache"); });
  CHECK(err.find("writable by others") != std::string::npos);
}

TEST_CASE("a cache directory owned by another user is refused") {
  if (geteuid() != 0) {
    WARN("needs root to give a directory away; not checked");
    return;
  }
  TempDir t;
  REQUIRE(mkdir((t / "cache").c_str(), 0755) == 0);
  REQUIRE(chown((t / "cache").c_str(), 65534, 65534) == 0);
  std::string err = tool_error([&] { check_cache_dir(t / "cache"); });
  CHECK(err.find("owned by uid 65534") != std::string::npos);
}

TEST_CASE("a missing cache directory is created writable by its owner alone, whatever the umask") {
  TempDir t;
  mode_t old = umask(0);
  std::string err = tool_error([&] { check_cache_dir(t / "cache"); });
  umask(old);
  CHECK(err == "");
  struct stat st;
  REQUIRE(lstat((t / "cache").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 022) == 0);
}

TEST_CASE("the header fallback notice comes from the run that sets up the tree, not later runs") {
  TempDir t;
  // A Debian-style pair for every arch name the tools may map this machine to.
  struct utsname u;
  uname(&u);
  for (std::string dir : {"src", "src/linux-headers-9.9.9-1-common", "src/linux-headers-9.9.9-1-common/include",
                          "src/linux-headers-9.9.9-1-common/include/linux"})
    REQUIRE(mkdir((t / dir).c_str(), 0755) == 0);
  std::ofstream(t / "src/linux-headers-9.9.9-1-common/include/linux/kconfig.h") << "kconfig";
  for (std::string arch : std::vector<std::string>{"amd64", "arm64", "686", u.machine})
    mkdir((t / ("src/linux-headers-9.9.9-1-" + arch)).c_str(), 0755);
  HeaderPlaces at;
  at.modules = t / "modules";
  at.kheaders_archive = t / "kheaders.tar.xz";
  at.src = t / "src";
  at.cache = t / "cache";
  std::optional<std::string> saved;
  if (const char* env = std::getenv("BCC_KERNEL_SOURCE")) saved = env;
  unsetenv("BCC_KERNEL_SOURCE");
  KernelHeaderChoice first = prepare_kernel_headers(at);
  unsetenv("BCC_KERNEL_SOURCE");
  KernelHeaderChoice second = prepare_kernel_headers(at);
  if (saved)
    setenv("BCC_KERNEL_SOURCE", saved->c_str(), 1);
  else
    unsetenv("BCC_KERNEL_SOURCE");
  CHECK(first.source == "debian");
  CHECK(first.note.find("linux-headers-9.9.9-1") != std::string::npos);
  CHECK(second.source == "debian");
  CHECK(second.path == first.path);
  CHECK(second.note.empty());
}
