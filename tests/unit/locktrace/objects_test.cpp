// A row's futex word reported as the pthread object it lies in.
#include <catch2/catch.hpp>

#include "locktrace/model.h"

using namespace lockkit;
using namespace lockkit::locktrace;

namespace {

Row row(uint32_t pid, uint64_t addr, std::vector<std::string> root_first) {
  Row r;
  r.pid = pid;
  r.tid = pid + 1;
  r.addr = addr;
  r.frames = std::move(root_first);
  return r;
}

// Process 5 has a global condvar `ready` (48 bytes at 0x1000); process 6 has nothing.
DataResolver symbols() {
  return [](uint32_t pid, uint64_t a) -> std::optional<DataObject> {
    if (pid == 5 && a >= 0x1000 && a < 0x1030) return DataObject{"ready", 0x1000, 48};
    return std::nullopt;
  };
}

}  // namespace

TEST_CASE("both futex words of a condvar are reported as that one condvar") {
  std::vector<Row> rows = {row(5, 0x1028, {"main", "consume"}), row(5, 0x102c, {"main", "consume"})};
  classify_rows(rows, symbols());
  for (auto& r : rows) {
    REQUIRE(r.object.has_value());
    CHECK(r.object->address == 0x1000);
    CHECK(r.object->kind == FutexKind::Condvar);
    CHECK(r.object->name == std::optional<std::string>("ready"));
  }
}

TEST_CASE("a heap object is classified by the glibc function in its rows' stacks") {
  std::vector<Row> rows = {
      row(6, 0x7f0000002028, {"start_thread", "consume", "___pthread_cond_wait", "__futex_abstimed_wait_common"}),
      row(6, 0x7f000000202c, {"start_thread", "produce", "__pthread_cond_signal"}),
      row(6, 0x7f0000003000, {"start_thread", "deposit", "pthread_mutex_lock", "__lll_lock_wait"}),
      row(6, 0x7f0000004000, {"start_thread", "worker", "syscall"}),
  };
  classify_rows(rows, symbols());
  REQUIRE(rows[0].object.has_value());
  CHECK(rows[0].object->kind == FutexKind::Condvar);
  CHECK(rows[0].object->address == 0x7f0000002000);
  REQUIRE(rows[1].object.has_value());
  CHECK(rows[1].object->address == 0x7f0000002000);
  REQUIRE(rows[2].object.has_value());
  CHECK(rows[2].object->kind == FutexKind::Mutex);
  CHECK(rows[2].object->address == 0x7f0000003000);
  CHECK_FALSE(rows[2].object->name.has_value());
  CHECK_FALSE(rows[3].object.has_value());  // a bare futex: no object
}

TEST_CASE("the same address in two processes is classified per process") {
  std::vector<Row> rows = {row(5, 0x1028, {"main"}), row(6, 0x1028, {"main"})};
  classify_rows(rows, symbols());
  REQUIRE(rows[0].object.has_value());
  CHECK(rows[0].object->kind == FutexKind::Condvar);
  CHECK_FALSE(rows[1].object.has_value());
}
