#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/elf.h"
#include "core/kallsyms.h"
#include "core/stacks.h"
#include "core/symbolizer.h"
#include "core/util.h"

using namespace lockkit;

static const std::string kWorkload = std::string(WORKLOAD_DIR) + "/lockwork";

TEST_CASE("elf finds a static mutex as a data symbol") {
  auto elf = ElfFile::open(kWorkload);
  auto syms = elf->find("orders_lock");
  REQUIRE(syms.size() == 1);
  CHECK_FALSE(syms[0].is_function);
  CHECK(syms[0].size == 40);  // sizeof(pthread_mutex_t) on x86-64
  const ElfSymbol* s = elf->symbol_at(syms[0].addr + 8, false);
  REQUIRE(s != nullptr);
  CHECK(s->name == "orders_lock");
}

TEST_CASE("elf names the function containing a code address") {
  auto elf = ElfFile::open(kWorkload);
  auto fn = elf->find("place_order");
  REQUIRE(fn.size() == 1);
  const ElfSymbol* s = elf->symbol_at(fn[0].addr + 3, true);
  REQUIRE(s != nullptr);
  CHECK(s->name == "place_order");
}

TEST_CASE("elf refuses a file that is not ELF") {
  CHECK_THROWS_AS(ElfFile::open("/proc/self/status"), ToolError);
}

TEST_CASE("symbolizer names a data address of a module mapped at a load bias") {
  auto elf = ElfFile::open(kWorkload);
  uint64_t bias = 0x555500000000ull;
  uint64_t lo = elf->min_vaddr() + bias;
  std::string maps = fmt::format("{:x}-{:x} r--p 00000000 fe:00 1234 {}\n", lo, lo + 0x1000, kWorkload);
  ProcessSymbolizer sym(0);
  sym.add_modules(modules_from_maps(maps));
  uint64_t addr = elf->find("orders_lock")[0].addr + bias;
  CHECK(sym.data_symbol(addr) == std::optional<std::string>("orders_lock"));
  CHECK(sym.data_symbol(addr + 4) == std::optional<std::string>("orders_lock+0x4"));
  Frame f = sym.resolve(elf->find("place_order")[0].addr + bias + 0x10);
  CHECK(f.function == "place_order");
  CHECK(f.offset == 0x10);
  CHECK(format_frame(f) == "place_order+0x10 [lockwork]");
}

TEST_CASE("an address in no known module is shown unresolved and never dropped") {
  ProcessSymbolizer sym(0);
  Frame f = sym.resolve(0x1234);
  CHECK_FALSE(f.resolved());
  CHECK(format_frame(f) == "[unknown] 0x1234");
  CHECK(frame_name(f) == "[unknown]");
}

TEST_CASE("kallsyms resolves code and names only data symbols as locks") {
  auto k = KernelSymbols::parse(
      "ffffffff81000000 T _stext\n"
      "ffffffff81000100 T mutex_lock\n"
      "ffffffff82000000 D text_mutex\n"
      "ffffffff82000040 d other_data\n"
      "ffffffffc0000000 t mod_fn\t[mymod]\n");
  Frame f = k.resolve(0xffffffff81000110);
  CHECK(f.function == "mutex_lock");
  CHECK(f.offset == 0x10);
  CHECK(k.data_symbol(0xffffffff82000000) == std::optional<std::string>("text_mutex"));
  CHECK(k.data_symbol(0xffffffff82000008) == std::optional<std::string>("text_mutex+0x8"));
  CHECK_FALSE(k.data_symbol(0xffffffff81000100).has_value());
  CHECK(k.resolve(0xffffffffc0000004).module == "mymod");
}

namespace {
// One ELF note: header, name and descriptor, each padded to 4 bytes.
std::string note(uint32_t type, const std::string& name, const std::string& desc) {
  auto pad = [](std::string s) {
    s.resize((s.size() + 3) & ~size_t(3), '\0');
    return s;
  };
  uint32_t hdr[3] = {uint32_t(name.size()), uint32_t(desc.size()), type};
  return std::string(reinterpret_cast<const char*>(hdr), sizeof(hdr)) + pad(name) + pad(desc);
}
}  // namespace

TEST_CASE("the kernel's build-id is the GNU note of type 3 among its notes") {
  std::string id("\x4a\x5a\x9b\x0a\xff\xb6\x6c\x43\x7a\xbc\xd4\x55\xd2\x73\x8a\xf8\x79\x98\x5f\xa9", 20);
  std::string xen = note(0x12, std::string("Xen", 4), std::string("\x00\x01\x02", 3));
  std::string salt = note(0x100, std::string("Linux", 6), std::string("6.1.102\0", 8));
  CHECK(build_id_from_notes(xen + note(3, std::string("GNU", 4), id) + salt) ==
        "4a5a9b0affb66c437abcd455d2738af879985fa9");
  // A note of another type or owner is not a build-id; a truncated block yields none.
  CHECK(build_id_from_notes(xen + note(3, std::string("Xen", 4), id) + note(4, std::string("GNU", 4), id)) == "");
  std::string whole = note(3, std::string("GNU", 4), id);
  CHECK(build_id_from_notes(whole.substr(0, whole.size() - 4)) == "");
  CHECK(build_id_from_notes("") == "");
}

TEST_CASE("the kernel image module spans _stext to _etext with the notes' build-id") {
  auto k = KernelSymbols::parse(
      "ffffffff81000000 T _stext\n"
      "ffffffff81000100 T mutex_lock\n"
      "ffffffff82000000 T _etext\n"
      "ffffffffc0000000 t mod_fn\t[mymod]\n");
  char dir[] = "/tmp/lockkit-notes.XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/notes";
  {
    std::ofstream f(path, std::ios::binary);
    f << note(3, std::string("GNU", 4), std::string("\x01\x02\xab", 3));
  }
  auto m = kernel_image_module(k, path);
  CHECK(m->path == "[kernel.kallsyms]");
  CHECK(m->lo == 0xffffffff81000000ull);
  CHECK(m->hi == 0xffffffff82000000ull);
  CHECK(m->build_id == "0102ab");
  CHECK(kernel_image_module(k, path + ".missing")->build_id == "");
  std::remove(path.c_str());
  rmdir(dir);

  Frame text = kernel_profile_frame(k.resolve(0xffffffff81000110), m);
  CHECK(text.mapping == m);
  CHECK(text.module == "[kernel.kallsyms]");
  Frame mod = kernel_profile_frame(k.resolve(0xffffffffc0000004), m);
  CHECK(mod.mapping == nullptr);
  CHECK(mod.module == "[mymod]");
  Frame unknown = kernel_profile_frame(k.resolve(0x10), m);
  CHECK(unknown.mapping == nullptr);
  CHECK(unknown.module.empty());
}

TEST_CASE("kallsyms with hidden addresses is an error") {
  CHECK(KernelSymbols::parse("0000000000000000 T _stext\n").size() == 0);
}

TEST_CASE("the caller skipped by the frame-pointer walk is put back after the leaf") {
  auto is_code = [](uint64_t) { return true; };
  CHECK(restore_caller({0x100, 0x300}, 0x200, is_code) == std::vector<uint64_t>{0x100, 0x200, 0x300});
  CHECK(restore_caller({0x100}, 0x200, is_code) == std::vector<uint64_t>{0x100, 0x200});
}

TEST_CASE("the walk is left alone when the caller is already the next frame or missing") {
  auto is_code = [](uint64_t) { return true; };
  CHECK(restore_caller({0x100, 0x200, 0x300}, 0x200, is_code) == std::vector<uint64_t>{0x100, 0x200, 0x300});
  CHECK(restore_caller({0x100, 0x300}, 0, is_code) == std::vector<uint64_t>{0x100, 0x300});
  CHECK(restore_caller({}, 0x200, is_code).empty());
}

TEST_CASE("a stack word that is not code is not taken for a caller") {
  auto is_code = [](uint64_t a) { return a >= 0x1000; };
  CHECK(restore_caller({0x1100, 0x1300}, 0x20, is_code) == std::vector<uint64_t>{0x1100, 0x1300});
}

TEST_CASE("a caller known to be a return address is put back without a check") {
  CHECK(restore_caller({0x100, 0x300}, 0x20) == std::vector<uint64_t>{0x100, 0x20, 0x300});
}

TEST_CASE("return addresses in a stack resolve to the function that made the call") {
  auto elf = ElfFile::open(kWorkload);
  uint64_t bias = 0x555500000000ull;
  uint64_t lo = elf->min_vaddr() + bias;
  ProcessSymbolizer sym(0);
  sym.add_modules(modules_from_maps(fmt::format("{:x}-{:x} r--p 00000000 fe:00 1234 {}\n", lo, lo + 0x1000, kWorkload)));
  const ElfSymbol& place = elf->find("place_order")[0];
  // A call that is the last instruction of place_order returns to the first byte past it.
  auto frames = sym.resolve_stack({place.addr + 4 + bias, place.addr + place.size + bias});
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].function == "place_order");
  CHECK(frames[0].offset == 4);
  CHECK(frames[1].function == "place_order");
  CHECK(frames[1].offset == place.size);
  CHECK(frames[1].addr == place.addr + place.size + bias);
}

TEST_CASE("a stack walk ends at the first word that is no return address into code") {
  auto is_code = [](uint64_t a) { return a >= 0x1000 && a < 0x2000; };
  // The leaf is the probed instruction itself and always kept; 0x100000000 is junk, and so is
  // everything after it however plausible.
  CHECK(plausible_frames({0x1100, 0x1200, 0x100000000ull, 0x1300}, is_code) == 2);
  CHECK(plausible_frames({0x1100, 0x1200, 0x1300}, is_code) == 3);
  CHECK(plausible_frames({0x9999}, is_code) == 1);
  CHECK(plausible_frames({}, is_code) == 0);
}

TEST_CASE("only the executable segments of a module are code") {
  auto elf = ElfFile::open(kWorkload);
  uint64_t bias = 0x555500000000ull;
  uint64_t lo = elf->min_vaddr() + bias;
  ProcessSymbolizer sym(0);
  sym.add_modules(modules_from_maps(fmt::format("{:x}-{:x} r--p 00000000 fe:00 1234 {}\n", lo, lo + 0x1000, kWorkload)));
  const ElfSymbol& place = elf->find("place_order")[0];
  CHECK(sym.is_code(place.addr + bias));
  auto data = elf->find("orders_lock");
  REQUIRE(!data.empty());
  CHECK_FALSE(sym.is_code(data[0].addr + bias));
  CHECK_FALSE(sym.is_code(0x100000000ull));
}
