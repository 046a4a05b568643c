// Verifies that uprobe breakpoints are really in a traced process. A uprobe is an int3 (0xCC)
// written into the process's copy of the probed page; on this kernel we have seen a busy target
// lose one, silently. Reading the byte back from /proc/PID/mem tells.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lockkit {

class BreakpointCheck {
 public:
  BreakpointCheck(pid_t pid, std::string library) : pid_(pid), library_(std::move(library)) {}
  // `vaddr` is the function's linked address in the library.
  void add(const std::string& function, uint64_t vaddr);
  // Functions whose breakpoint is missing from the process right now. Empty when all are in place
  // or when the process (or its mapping of the library) is gone.
  std::vector<std::string> missing() const;

 private:
  pid_t pid_;
  std::string library_;
  std::vector<std::pair<std::string, uint64_t>> sites_;
};

}  // namespace lockkit
