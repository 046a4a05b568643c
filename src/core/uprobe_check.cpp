#include "core/uprobe_check.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "core/process.h"
#include "core/symbolizer.h"
#include "core/util.h"

namespace lockkit {

void BreakpointCheck::add(const std::string& function, uint64_t vaddr) { sites_.push_back({function, vaddr}); }

std::vector<std::string> BreakpointCheck::missing() const {
  std::vector<std::string> out;
  auto maps = read_file(fmt::format("/proc/{}/maps", pid_));
  if (!maps) return out;
  char want[PATH_MAX];
  if (!realpath(library_.c_str(), want)) return out;
  const MappedModule* lib = nullptr;
  std::string root = process_root(pid_);
  auto mods = modules_from_maps(*maps, root);
  for (auto& m : mods) {
    char have[PATH_MAX];
    if (realpath((root + m.path).c_str(), have) && std::string(have) == want) lib = &m;
  }
  if (lib == nullptr) return out;
  int fd = open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  for (auto& [fn, vaddr] : sites_) {
    unsigned char byte = 0;
    if (pread(fd, &byte, 1, off_t(vaddr + lib->bias)) == 1 && byte != 0xCC) out.push_back(fn);
  }
  close(fd);
  return out;
}

}  // namespace lockkit
