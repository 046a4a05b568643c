// Names of stripped files from their separate debug files: found by build-id or by
// .gnu_debuglink, trusted only when they match the stripped file.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/elf.h"
#include "core/symbolizer.h"
#include "core/util.h"

using namespace lockkit;
namespace fs = std::filesystem;

namespace {

const std::string kParprimes = std::string(WORKLOAD_DIR) + "/parprimes";
const std::string kLockwork = std::string(WORKLOAD_DIR) + "/lockwork";
const std::string kParprimesSource = std::string(TEST_DATA_DIR) + "/../workloads/parprimes.c";

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lockkit-debuginfo-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0);
}

// `prog` split into a stripped copy `stripped` and its debug file `debug` (which keeps the
// symbol tables and the program headers, with the same addresses).
void split_debug(const std::string& prog, const std::string& stripped, const std::string& debug) {
  sh(fmt::format("objcopy --only-keep-debug '{}' '{}'", prog, debug));
  sh(fmt::format("strip --strip-all -o '{}' '{}'", stripped, prog));
}

// Where a debug directory holds the debug file of a file with build-id `id`.
std::string build_id_path(const std::string& dir, const std::string& id) {
  REQUIRE(id.size() > 2);
  std::string d = fmt::format("{}/.build-id/{}", dir, id.substr(0, 2));
  fs::create_directories(d);
  return fmt::format("{}/{}.debug", d, id.substr(2));
}

bool names_primes_lock(const ElfFile& elf) {
  auto lock = elf.find("primes_lock");
  if (lock.size() != 1 || lock[0].is_function) return false;
  const ElfSymbol* s = elf.symbol_at(lock[0].addr + 8, false);
  return s != nullptr && s->name == "primes_lock";
}

bool names_worker(const ElfFile& elf) {
  auto fn = elf.find("worker");
  if (fn.size() != 1 || !fn[0].is_function) return false;
  const ElfSymbol* s = elf.symbol_at(fn[0].addr + 2, true);
  return s != nullptr && s->name == "worker";
}

}  // namespace

TEST_CASE("a stripped file has no names of its own for static locks and functions") {
  TempDir t;
  split_debug(kParprimes, t / "parprimes", t / "parprimes.dbg");
  auto elf = ElfFile::open(t / "parprimes");
  CHECK(elf->find("primes_lock").empty());
  CHECK(elf->find("worker").empty());
  CHECK(elf->find("main").empty());
  CHECK(elf->debug_file().empty());
}

TEST_CASE("a debug file in a debug directory's .build-id tree names data and code") {
  TempDir t;
  std::string id = ElfFile::open(kParprimes)->build_id();
  REQUIRE_FALSE(id.empty());
  split_debug(kParprimes, t / "parprimes", build_id_path(t / "debug", id));
  auto elf = ElfFile::open(t / "parprimes", {t / "debug"});
  CHECK(elf->debug_file() == build_id_path(t / "debug", id));
  CHECK(names_primes_lock(*elf));
  CHECK(names_worker(*elf));
  // The addresses are the unstripped file's, so the lock has the same address as linked.
  CHECK(elf->find("primes_lock")[0].addr == ElfFile::open(kParprimes)->find("primes_lock")[0].addr);
}

TEST_CASE("a debug file named by .gnu_debuglink is found beside the file and checked by CRC") {
  // Built without a build-id, so only the debuglink's CRC can vouch for the debug file.
  TempDir t;
  sh(fmt::format("cc -O2 -g -pthread -Wl,--build-id=none -o '{}' '{}'", t / "prog", kParprimesSource));
  REQUIRE(ElfFile::open(t / "prog")->build_id().empty());
  fs::create_directories(t / "bin/.debug");
  split_debug(t / "prog", t / "bin/parprimes", t / "bin/.debug/parprimes.debug");
  sh(fmt::format("cd '{}' && objcopy --add-gnu-debuglink=.debug/parprimes.debug parprimes", t / "bin"));

  SECTION("in .debug/ beside it") {
    auto elf = ElfFile::open(t / "bin/parprimes");
    CHECK(elf->debug_file() == t / "bin/.debug/parprimes.debug");
    CHECK(names_primes_lock(*elf));
    CHECK(names_worker(*elf));
  }
  SECTION("in a debug directory given by the user") {
    fs::create_directories(t / "debug");
    fs::rename(t / "bin/.debug/parprimes.debug", t / "debug/parprimes.debug");
    CHECK(ElfFile::open(t / "bin/parprimes")->find("primes_lock").empty());
    auto elf = ElfFile::open(t / "bin/parprimes", {t / "debug"});
    CHECK(elf->debug_file() == t / "debug/parprimes.debug");
    CHECK(names_primes_lock(*elf));
  }
  SECTION("a file of that name with another CRC is ignored") {
    // The right debug file with one byte more: same symbols and addresses, another CRC.
    std::ofstream(t / "bin/.debug/parprimes.debug", std::ios::app) << 'x';
    auto elf = ElfFile::open(t / "bin/parprimes");
    CHECK(elf->debug_file().empty());
    CHECK(elf->find("primes_lock").empty());
  }
}

TEST_CASE("a debug file of another build-id is ignored") {
  TempDir t;
  std::string id = ElfFile::open(kParprimes)->build_id();
  split_debug(kParprimes, t / "parprimes", t / "parprimes.dbg");
  // lockwork's debug file where parprimes' belongs.
  sh(fmt::format("objcopy --only-keep-debug '{}' '{}'", kLockwork, build_id_path(t / "debug", id)));
  auto elf = ElfFile::open(t / "parprimes", {t / "debug"});
  CHECK(elf->debug_file().empty());
  CHECK(elf->find("primes_lock").empty());
  CHECK(elf->find("orders_lock").empty());
}

TEST_CASE("a debug file with the right build-id but other addresses is ignored") {
  // Two builds that claim the same build-id but are laid out differently.
  TempDir t;
  const std::string id = "0123456789abcdef0123456789abcdef01234567";
  sh(fmt::format("cc -O2 -g -pthread -Wl,--build-id=0x{} -o '{}' '{}'", id, t / "a", kParprimesSource));
  sh(fmt::format("cc -O0 -g -pthread -Wl,--build-id=0x{} -o '{}' '{}'", id, t / "b", kParprimesSource));
  REQUIRE(ElfFile::open(t / "a")->build_id() == id);
  split_debug(t / "a", t / "a.stripped", t / "a.dbg");
  sh(fmt::format("objcopy --only-keep-debug '{}' '{}'", t / "b", build_id_path(t / "debug", id)));
  auto elf = ElfFile::open(t / "a.stripped", {t / "debug"});
  CHECK(elf->debug_file().empty());
  CHECK(elf->find("primes_lock").empty());
  CHECK_THAT(elf->debug_file_refused(), Catch::Contains(build_id_path(t / "debug", id)));

  // The matching one is used.
  fs::rename(t / "a.dbg", build_id_path(t / "debug", id));
  CHECK(names_primes_lock(*ElfFile::open(t / "a.stripped", {t / "debug"})));
}

TEST_CASE("the symbolizer names a stripped process's lock and frames through the debug directories") {
  TempDir t;
  std::string id = ElfFile::open(kParprimes)->build_id();
  split_debug(kParprimes, t / "parprimes", build_id_path(t / "debug", id));
  ElfFile::set_debug_dirs({t / "debug"});
  auto elf = ElfFile::open_cached(t / "parprimes");
  REQUIRE(names_primes_lock(*elf));
  uint64_t bias = 0x555500000000ull;
  uint64_t lo = elf->min_vaddr() + bias;
  ProcessSymbolizer sym(0);
  sym.add_modules(modules_from_maps(fmt::format("{:x}-{:x} r--p 00000000 fe:00 1234 {}\n", lo, lo + 0x1000, t / "parprimes")));
  CHECK(sym.data_symbol(elf->find("primes_lock")[0].addr + bias) == std::optional<std::string>("primes_lock"));
  Frame f = sym.resolve(elf->find("worker")[0].addr + bias + 1);
  CHECK(format_frame(f) == "worker+0x1 [parprimes]");
  ElfFile::set_debug_dirs({});
}

TEST_CASE("looking for a debug file leaves the process's other descriptors open") {
  // libdwfl used outside its usual sequence can close a descriptor it never opened (fd 0).
  TempDir t;
  std::string id = ElfFile::open(kParprimes)->build_id();
  split_debug(kParprimes, t / "parprimes", build_id_path(t / "debug", id));
  int saved = dup(0);
  REQUIRE(saved >= 0);
  int null = ::open("/dev/null", O_RDONLY);
  REQUIRE(dup2(null, 0) == 0);
  ::close(null);
  auto elf = ElfFile::open(t / "parprimes", {t / "debug"});
  bool still_open = fcntl(0, F_GETFD) != -1;
  dup2(saved, 0);
  ::close(saved);
  CHECK(elf->debug_file() == build_id_path(t / "debug", id));
  CHECK(still_open);
}
