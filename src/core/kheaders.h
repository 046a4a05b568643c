// Kernel headers for BCC's compiler.
#pragma once

#include <string>

namespace lockkit {

struct KernelHeaderChoice {
  std::string path;    // directory handed to BCC ("" when BCC finds headers by itself)
  std::string source;  // "running kernel", "BCC_KERNEL_SOURCE", "kheaders", "debian"
  std::string note;    // one line for stderr when this call set up the fallback tree, else ""
};

// Where prepare_kernel_headers looks; tests point these elsewhere.
struct HeaderPlaces {
  std::string modules = "/lib/modules";                       // <release>/build
  std::string kheaders_archive = "/sys/kernel/kheaders.tar.xz";
  std::string src = "/usr/src";                               // Debian linux-headers-* pairs
  std::string cache = "/var/cache/lockkit";                   // merged trees
};

// Finds headers in this order: /lib/modules/$(uname -r)/build, $BCC_KERNEL_SOURCE,
// /sys/kernel/kheaders.tar.xz, the newest installed Debian linux-headers pair merged into a cached
// symlink tree under /var/cache/lockkit (built on first use, and `note` is set only then). Sets
// BCC_KERNEL_SOURCE for the last case. Throws ToolError naming the package to install when nothing
// is found.
KernelHeaderChoice prepare_kernel_headers(const HeaderPlaces& places = {});

// Creates `dir` (0755) when missing and checks it can hold trees root will compile from: a real
// directory, not a symbolic link, owned by root (or the effective user) and writable by no one
// else. Throws ToolError naming what is wrong.
void check_cache_dir(const std::string& dir);

// Makes `cache_root/name` the merge of `common` and `arch`: built in a private mkdtemp directory in
// `cache_root`, stamped `.complete`, renamed into place. Returns true when this call built it, false
// when a complete tree was already there (or another run installed one first). Leaves no
// temporary behind, on success or failure. Exposed for tests.
bool ensure_merged_tree(const std::string& common, const std::string& arch, const std::string& cache_root,
                        const std::string& name);

// Merges a Debian "-common" and arch tree into `dest` (symlinks; arch entries win). Exposed for tests.
void merge_header_trees(const std::string& common, const std::string& arch, const std::string& dest);

}  // namespace lockkit
