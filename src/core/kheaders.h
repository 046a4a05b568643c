// Kernel headers for BCC's compiler.
#pragma once

#include <string>

namespace lockkit {

struct KernelHeaderChoice {
  std::string path;    // directory handed to BCC ("" when BCC finds headers by itself)
  std::string source;  // "running kernel", "BCC_KERNEL_SOURCE", "kheaders", "debian"
  std::string note;    // one line for stderr when falling back, else ""
};

// Finds headers in this order: /lib/modules/$(uname -r)/build, $BCC_KERNEL_SOURCE,
// /sys/kernel/kheaders.tar.xz, the newest installed Debian linux-headers pair merged into a cached
// symlink tree. Sets BCC_KERNEL_SOURCE for the last case. Throws ToolError naming the package to
// install when nothing is found.
KernelHeaderChoice prepare_kernel_headers();

// Merges a Debian "-common" and arch tree into `dest` (symlinks; arch entries win). Exposed for tests.
void merge_header_trees(const std::string& common, const std::string& arch, const std::string& dest);

}  // namespace lockkit
