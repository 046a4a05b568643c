// The unwind-table builder on functions whose call-frame information is written out by hand, and
// the trie keys that say where a process maps a module.
#include <catch2/catch.hpp>

#include <cstring>

#include "core/elf.h"
#include "core/unwind.h"

// Two functions with known CFI, in this test binary's own .eh_frame.
//   lk_fixture_fp:    push rbp; mov rbp, rsp; sub rsp, 32; leave; ret  (a frame-pointer frame)
//   lk_fixture_rbx:   a CFA computed from rbx, which the BPF walk cannot follow
__asm__(
    ".text\n"
    ".globl lk_fixture_fp\n"
    ".type lk_fixture_fp, @function\n"
    "lk_fixture_fp:\n"
    ".cfi_startproc\n"
    "  push %rbp\n"                  // offset 0, 1 byte
    ".cfi_def_cfa_offset 16\n"
    ".cfi_offset %rbp, -16\n"
    "  mov %rsp, %rbp\n"             // offset 1, 3 bytes
    ".cfi_def_cfa_register %rbp\n"
    "  sub $32, %rsp\n"              // offset 4, 4 bytes
    "  leave\n"                      // offset 8, 1 byte
    ".cfi_def_cfa %rsp, 8\n"
    ".cfi_restore %rbp\n"
    "  ret\n"                        // offset 9
    ".cfi_endproc\n"
    ".size lk_fixture_fp, .-lk_fixture_fp\n"
    ".globl lk_fixture_rbx\n"
    ".type lk_fixture_rbx, @function\n"
    "lk_fixture_rbx:\n"
    ".cfi_startproc\n"
    "  push %rbx\n"                  // offset 0, 1 byte
    ".cfi_def_cfa %rbx, 16\n"
    "  pop %rbx\n"                   // offset 1, 1 byte
    ".cfi_def_cfa %rsp, 8\n"
    "  ret\n"                        // offset 2
    ".cfi_endproc\n"
    ".size lk_fixture_rbx, .-lk_fixture_rbx\n");

extern "C" void lk_fixture_fp();
extern "C" void lk_fixture_rbx();

namespace {

using lockkit::build_unwind_rows;

// The row in force at linked address `pc` (the last one at or below it).
lk_unwind_row row_at(const std::vector<lk_unwind_row>& rows, uint64_t pc) {
  lk_unwind_row found{};
  found.cfa = 0xff;
  for (auto& r : rows)
    if (r.pc <= pc) found = r;
  return found;
}

uint64_t linked(const char* name) {
  auto elf = lockkit::ElfFile::open("/proc/self/exe");
  auto syms = elf->find(name);
  REQUIRE(syms.size() == 1);
  return syms[0].addr;
}

}  // namespace

TEST_CASE("unwind rows follow a frame-pointer function instruction by instruction") {
  auto rows = build_unwind_rows("/proc/self/exe");
  CHECK(rows.source == ".eh_frame");
  CHECK(rows.fdes > 10);
  bool sorted = true;
  for (size_t i = 1; i < rows.rows.size(); i++) sorted = sorted && rows.rows[i - 1].pc < rows.rows[i].pc;
  CHECK(sorted);
  uint64_t f = linked("lk_fixture_fp");

  lk_unwind_row r = row_at(rows.rows, f);  // entry: CFA = rsp + 8, rbp untouched
  CHECK(r.cfa == LK_CFA_RSP);
  CHECK(r.cfa_off == 8);
  CHECK(r.rbp == LK_RBP_SAME);

  r = row_at(rows.rows, f + 1);  // after push rbp
  CHECK(r.cfa == LK_CFA_RSP);
  CHECK(r.cfa_off == 16);
  CHECK(r.rbp == LK_RBP_AT_CFA);
  CHECK(r.rbp_off == -16);

  for (uint64_t at : {f + 4, f + 6, f + 8}) {  // rbp is the frame: CFA = rbp + 16
    r = row_at(rows.rows, at);
    CHECK(r.cfa == LK_CFA_RBP);
    CHECK(r.cfa_off == 16);
    CHECK(r.rbp == LK_RBP_AT_CFA);
    CHECK(r.rbp_off == -16);
  }

  r = row_at(rows.rows, f + 9);  // after leave: back to the entry rule
  CHECK(r.cfa == LK_CFA_RSP);
  CHECK(r.cfa_off == 8);
  CHECK(r.rbp == LK_RBP_SAME);
}

TEST_CASE("unwind rows mark a rule the BPF walk cannot follow and keep the next one") {
  auto rows = build_unwind_rows("/proc/self/exe");
  uint64_t f = linked("lk_fixture_rbx");
  CHECK(row_at(rows.rows, f).cfa == LK_CFA_RSP);
  CHECK(row_at(rows.rows, f + 1).cfa == LK_CFA_NONE);  // CFA from rbx
  lk_unwind_row r = row_at(rows.rows, f + 2);
  CHECK(r.cfa == LK_CFA_RSP);
  CHECK(r.cfa_off == 8);
  CHECK(rows.unsupported >= 1);
}

TEST_CASE("unwind rows of a file that is not ELF are refused with its name") {
  CHECK_THROWS_WITH(build_unwind_rows("/proc/self/status"), Catch::Contains("/proc/self/status"));
}

TEST_CASE("unwind trie keys cover exactly the mapped range of one process") {
  const uint32_t tgid = 4242;
  const uint64_t lo = 0x7f0000001000, hi = 0x7f0000235000;
  auto keys = lockkit::unwind_keys(tgid, lo, hi);
  CHECK(keys.size() < 64);
  // Longest-prefix match by hand: does some key cover (pid, addr)?
  auto covered = [&](uint32_t pid, uint64_t addr) {
    uint8_t data[12];
    uint32_t pid_be = __builtin_bswap32(pid);
    uint64_t addr_be = __builtin_bswap64(addr);
    std::memcpy(data, &pid_be, 4);
    std::memcpy(data + 4, &addr_be, 8);
    for (auto& k : keys) {
      bool match = true;
      for (uint32_t bit = 0; bit < k.prefixlen && match; bit++) {
        uint8_t mask = uint8_t(0x80 >> (bit % 8));
        match = (data[bit / 8] & mask) == (k.data[bit / 8] & mask);
      }
      if (match) return true;
    }
    return false;
  };
  CHECK(covered(tgid, lo));
  CHECK(covered(tgid, lo + 0x1234));
  CHECK(covered(tgid, hi - 1));
  CHECK_FALSE(covered(tgid, lo - 1));
  CHECK_FALSE(covered(tgid, hi));
  CHECK_FALSE(covered(tgid + 1, lo));
  for (auto& k : keys) CHECK(k.prefixlen >= 32);
}
