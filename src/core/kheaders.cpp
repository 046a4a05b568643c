#include "core/kheaders.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <vector>

#include "core/util.h"

namespace lockkit {

namespace {

bool has_kconfig(const std::string& dir) { return path_exists(dir + "/include/linux/kconfig.h"); }

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Orders "6.1.0-56" style versions numerically.
bool version_less(const std::string& a, const std::string& b) {
  auto parts = [](const std::string& s) {
    std::vector<long> v;
    std::string cur;
    for (char c : s) {
      if (isdigit(static_cast<unsigned char>(c))) {
        cur += c;
      } else if (!cur.empty()) {
        v.push_back(std::stol(cur));
        cur.clear();
      }
    }
    if (!cur.empty()) v.push_back(std::stol(cur));
    return v;
  };
  return parts(a) < parts(b);
}

std::string debian_arch() {
  struct utsname u;
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "i686" || m == "i386") return "686";
  return m;
}

}  // namespace

void merge_header_trees(const std::string& common, const std::string& arch, const std::string& dest) {
  if (mkdir(dest.c_str(), 0755) != 0 && errno != EEXIST)
    throw ToolError(fmt::format("cannot create {}: {}", dest, errno_text(errno)));
  std::set<std::string> names;
  for (auto& n : list_dir(common)) names.insert(n);
  for (auto& n : list_dir(arch)) names.insert(n);
  for (auto& n : names) {
    std::string c = common + "/" + n, a = arch + "/" + n, d = dest + "/" + n;
    bool in_c = path_exists(c), in_a = path_exists(a);
    if (in_c && in_a && is_directory(c) && is_directory(a)) {
      merge_header_trees(c, a, d);
      continue;
    }
    const std::string& target = in_a ? a : c;
    if (!in_a && !in_c) continue;  // dangling links in the packages
    if (symlink(target.c_str(), d.c_str()) != 0 && errno != EEXIST)
      throw ToolError(fmt::format("cannot link {}: {}", d, errno_text(errno)));
  }
}

KernelHeaderChoice prepare_kernel_headers() {
  struct utsname u;
  uname(&u);
  std::string release = u.release;
  std::string own = "/lib/modules/" + release + "/build";
  if (has_kconfig(own)) return {own, "running kernel", ""};

  if (const char* env = std::getenv("BCC_KERNEL_SOURCE")) {
    if (has_kconfig(env)) return {env, "BCC_KERNEL_SOURCE", ""};
    throw ToolError(fmt::format("BCC_KERNEL_SOURCE={} has no include/linux/kconfig.h", env));
  }
  if (path_exists("/sys/kernel/kheaders.tar.xz")) return {"", "kheaders", ""};

  // Debian splits headers into linux-headers-V-common and linux-headers-V-ARCH.
  std::string arch = debian_arch();
  std::vector<std::string> versions;
  for (auto& n : list_dir("/usr/src")) {
    if (!starts_with(n, "linux-headers-") || !ends_with(n, "-common")) continue;
    std::string v = n.substr(14, n.size() - 14 - 7);
    if (has_kconfig("/usr/src/" + n) && is_directory("/usr/src/linux-headers-" + v + "-" + arch))
      versions.push_back(v);
  }
  if (versions.empty())
    throw ToolError(fmt::format(
        "no kernel headers for {} found; install them (Debian: apt-get install linux-headers-{} "
        "or linux-headers-{}) or set BCC_KERNEL_SOURCE",
        release, release, arch));
  std::sort(versions.begin(), versions.end(), version_less);
  std::string v = versions.back();
  std::string cache_root = "/var/cache/lockkit";
  std::string dest = cache_root + "/kheaders-" + v + "-" + arch;
  if (!path_exists(dest + "/.complete")) {
    mkdir("/var/cache", 0755);
    if (mkdir(cache_root.c_str(), 0755) != 0 && errno != EEXIST)
      throw ToolError(fmt::format("cannot create {}: {}", cache_root, errno_text(errno)));
    std::string tmp = fmt::format("{}.tmp.{}", dest, getpid());
    merge_header_trees("/usr/src/linux-headers-" + v + "-common",
                       "/usr/src/linux-headers-" + v + "-" + arch, tmp);
    std::string stamp = tmp + "/.complete";
    if (FILE* f = fopen(stamp.c_str(), "w")) fclose(f);
    if (rename(tmp.c_str(), dest.c_str()) != 0) {
      // Another run won the race: use its tree, drop ours.
      std::string cmd = "rm -rf '" + tmp + "'";
      if (system(cmd.c_str()) != 0) {
      }
    }
  }
  setenv("BCC_KERNEL_SOURCE", dest.c_str(), 1);
  return {dest, "debian",
          fmt::format("no headers for running kernel {}; using Debian linux-headers-{} ({})", release,
                      v, dest)};
}

}  // namespace lockkit
