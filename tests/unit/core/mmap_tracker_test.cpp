#include <catch2/catch.hpp>
#include <linux/perf_event.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../unavailable.h"
#include "core/mmap_tracker.h"
#include "core/symbolizer.h"
#include "core/util.h"

using namespace lockkit;

namespace {

template <class T>
void put(std::vector<uint8_t>& v, T x) {
  auto* p = reinterpret_cast<uint8_t*>(&x);
  v.insert(v.end(), p, p + sizeof(x));
}

// A record as the kernel lays it out: header, body, then the {pid, tid, time} trailer.
std::vector<uint8_t> record(uint32_t type, uint16_t misc, const std::vector<uint8_t>& body, uint64_t time) {
  std::vector<uint8_t> out(sizeof(perf_event_header) + body.size());
  std::copy(body.begin(), body.end(), out.begin() + sizeof(perf_event_header));
  while (out.size() % 8) out.push_back(0);
  put<uint32_t>(out, 1);  // pid
  put<uint32_t>(out, 2);  // tid
  put<uint64_t>(out, time);
  perf_event_header h{type, misc, uint16_t(out.size())};
  memcpy(out.data(), &h, sizeof(h));
  return out;
}

}  // namespace

TEST_CASE("an MMAP2 record gives the file, its address, offset and protection") {
  std::vector<uint8_t> b;
  put<uint32_t>(b, 100);  // pid
  put<uint32_t>(b, 101);  // tid
  put<uint64_t>(b, 0x7f0000026000);
  put<uint64_t>(b, 0x155000);
  put<uint64_t>(b, 0x26000);  // pgoff, in bytes
  b.resize(b.size() + 24);    // maj, min, ino, ino_generation
  put<uint32_t>(b, 5);        // PROT_READ | PROT_EXEC
  put<uint32_t>(b, 2);        // MAP_PRIVATE
  for (char c : std::string("/usr/lib/x86_64-linux-gnu/libc.so.6")) b.push_back(uint8_t(c));
  b.push_back(0);
  auto r = record(PERF_RECORD_MMAP2, 0, b, 77);
  MappingRecord m;
  REQUIRE(decode_mapping_record(r.data(), r.size(), &m));
  CHECK(m.time == 77);
  auto* mm = std::get_if<MmapRecord>(&m.what);
  REQUIRE(mm != nullptr);
  CHECK(mm->pid == 100);
  CHECK(mm->tid == 101);
  CHECK(mm->addr == 0x7f0000026000);
  CHECK(mm->len == 0x155000);
  CHECK(mm->pgoff == 0x26000);
  CHECK(mm->prot == 5);
  CHECK(mm->flags == 2);
  CHECK(mm->filename == "/usr/lib/x86_64-linux-gnu/libc.so.6");
}

TEST_CASE("FORK EXIT COMM and LOST records are decoded and a short or unknown record is refused") {
  std::vector<uint8_t> b;
  for (uint32_t x : {20u, 10u, 21u, 11u}) put<uint32_t>(b, x);
  put<uint64_t>(b, 5);
  auto r = record(PERF_RECORD_FORK, 0, b, 1);
  MappingRecord m;
  REQUIRE(decode_mapping_record(r.data(), r.size(), &m));
  auto* t = std::get_if<TaskRecord>(&m.what);
  REQUIRE(t != nullptr);
  CHECK(t->fork);
  CHECK(t->pid == 20);
  CHECK(t->ppid == 10);
  CHECK(t->tid == 21);
  CHECK(t->ptid == 11);
  r = record(PERF_RECORD_EXIT, 0, b, 1);
  REQUIRE(decode_mapping_record(r.data(), r.size(), &m));
  CHECK_FALSE(std::get<TaskRecord>(m.what).fork);

  std::vector<uint8_t> c;
  put<uint32_t>(c, 7);
  put<uint32_t>(c, 7);
  for (char ch : std::string("short")) c.push_back(uint8_t(ch));
  c.push_back(0);
  r = record(PERF_RECORD_COMM, PERF_RECORD_MISC_COMM_EXEC, c, 2);
  REQUIRE(decode_mapping_record(r.data(), r.size(), &m));
  CHECK(std::get<CommRecord>(m.what).comm == "short");
  CHECK(std::get<CommRecord>(m.what).exec);

  std::vector<uint8_t> l;
  put<uint64_t>(l, 1);   // id
  put<uint64_t>(l, 42);  // lost
  r = record(PERF_RECORD_LOST, 0, l, 3);
  REQUIRE(decode_mapping_record(r.data(), r.size(), &m));
  CHECK(std::get<LostRecord>(m.what).lost == 42);

  CHECK_FALSE(decode_mapping_record(r.data(), r.size() - 8, &m));  // header.size disagrees
  r = record(PERF_RECORD_SAMPLE, 0, l, 3);
  CHECK_FALSE(decode_mapping_record(r.data(), r.size(), &m));
  r = record(PERF_RECORD_MMAP2, 0, l, 3);  // too short for an MMAP2 body
  CHECK_FALSE(decode_mapping_record(r.data(), r.size(), &m));
}

TEST_CASE("the online CPU list is read with its ranges") {
  CHECK(parse_cpu_list("0-3,6\n") == std::vector<int>{0, 1, 2, 3, 6});
  CHECK(parse_cpu_list("0") == std::vector<int>{0});
  CHECK(parse_cpu_list("").empty());
}

namespace {

// Runs argv held before exec, followed from its exec like lockstat follows a command; the tracker
// is null (with a warning) where perf events are not available.
std::unique_ptr<MmapTracker> run_followed(const std::vector<std::string>& argv, size_t ring_pages, pid_t* pid) {
  int go[2];
  REQUIRE(pipe(go) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(127);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(go[0]);
  std::unique_ptr<MmapTracker> tracker;
  try {
    tracker = std::make_unique<MmapTracker>(child, MmapTracker::Start::OnExec, ring_pages);
  } catch (const ToolError& e) {
    LOCKKIT_UNAVAILABLE("perf events unavailable: " << e.what());
  }
  REQUIRE(write(go[1], "g", 1) == 1);
  close(go[1]);
  int st = 0;
  REQUIRE(waitpid(child, &st, 0) == child);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  *pid = child;
  return tracker;
}

}  // namespace

TEST_CASE("the tracker sees a command's mappings from its exec, its threads and its forks") {
  std::string record_path = "/tmp/lockkit-mmap-tracker-test." + std::to_string(getpid());
  pid_t child = 0;
  auto tracker = run_followed({std::string(WORKLOAD_DIR) + "/shortlived", record_path, "2"}, 16, &child);
  unlink(record_path.c_str());
  if (!tracker) return;

  ProcessSymbolizer sym(child);
  bool exe_seen = false, libc_seen = false, exec_seen = false;
  int threads = 0, forks = 0;
  uint64_t last = 0;
  for (auto& r : tracker->read()) {
    CHECK(r.time >= last);  // merged in time order
    last = r.time;
    if (auto* m = std::get_if<MmapRecord>(&r.what)) {
      CHECK(m->pid == uint32_t(child));  // nothing from before the exec, nothing of the children
      if (!(m->prot & 4) || m->filename.empty() || m->filename[0] != '/') continue;
      if (auto mod = module_from_mapping(m->filename, m->addr, m->pgoff)) sym.add_modules({*mod});
      exe_seen |= basename_of(m->filename) == "shortlived";
      libc_seen |= starts_with(basename_of(m->filename), "libc.so");
    } else if (auto* c = std::get_if<CommRecord>(&r.what)) {
      exec_seen |= c->exec && c->comm == "shortlived";
    } else if (auto* t = std::get_if<TaskRecord>(&r.what)) {
      if (!t->fork) continue;
      if (t->pid == t->ppid) threads++;
      else forks++;
    } else if (std::get_if<LostRecord>(&r.what)) {
      FAIL("records lost");
    }
  }
  CHECK(exe_seen);
  CHECK(libc_seen);
  CHECK(exec_seen);
  CHECK(threads == 1);  // one pthread_create
  CHECK(forks == 2);
  CHECK(tracker->read().empty());  // the rings were freed
}

TEST_CASE("records a full ring could not hold are counted as lost") {
  // The kernel says how many records it dropped in a LOST record, written once the reader has
  // made room again: so the ring is read while the command runs, as the tools do every tick.
  // 200 short commands (forks, execs and their mappings) overflow one page between two reads.
  int go[2];
  REQUIRE(pipe(go) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(127);
    execl("/bin/sh", "sh", "-c", "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done", (char*)nullptr);
    _exit(127);
  }
  close(go[0]);
  std::unique_ptr<MmapTracker> tracker;
  try {
    tracker = std::make_unique<MmapTracker>(child, MmapTracker::Start::OnExec, 1);
  } catch (const ToolError& e) {
    FAIL("perf events unavailable: " << e.what());
  }
  REQUIRE(write(go[1], "g", 1) == 1);
  close(go[1]);
  uint64_t lost = 0;
  auto count = [&] {
    for (auto& r : tracker->read())
      if (auto* l = std::get_if<LostRecord>(&r.what)) lost += l->lost;
  };
  int st = 0;
  while (waitpid(child, &st, WNOHANG) == 0) {
    usleep(50000);
    count();
  }
  count();
  REQUIRE(WIFEXITED(st));
  CHECK(lost > 0);
}
