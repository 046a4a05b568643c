#include "core/kheaders.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
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

void check_cache_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) == 0) {
    if (chmod(dir.c_str(), 0755) != 0)  // whatever the umask: a group-writable one would be refused below
      throw ToolError(fmt::format("cannot set up {}: {}", dir, errno_text(errno)));
  } else if (errno != EEXIST) {
    throw ToolError(fmt::format("cannot create {}: {}", dir, errno_text(errno)));
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) throw ToolError(fmt::format("cannot use {}: {}", dir, errno_text(errno)));
  auto refuse = [&](const std::string& why) {
    return ToolError(fmt::format("refusing to use the cache directory {}: {}; it must be a directory "
                                 "owned by root and writable by no one else",
                                 dir, why));
  };
  if (S_ISLNK(st.st_mode)) throw refuse("it is a symbolic link");
  if (!S_ISDIR(st.st_mode)) throw refuse("it is not a directory");
  // Root, or the user running this (tests run unprivileged on their own directories).
  if (st.st_uid != 0 && st.st_uid != geteuid()) throw refuse(fmt::format("it is owned by uid {}", st.st_uid));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw refuse(fmt::format("it is writable by {} (mode {:04o})", st.st_mode & S_IWOTH ? "others" : "its group",
                             st.st_mode & 07777));
}

bool ensure_merged_tree(const std::string& common, const std::string& arch, const std::string& cache_root,
                        const std::string& name) {
  std::string dest = cache_root + "/" + name;
  check_cache_dir(cache_root);
  if (path_exists(dest + "/.complete")) return false;

  // A private, unpredictable directory in the cache: nothing another process planted is followed.
  std::string tmpl = cache_root + "/." + name + ".tmp-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw ToolError(fmt::format("cannot create a directory in {}: {}", cache_root, errno_text(errno)));
  std::string tmp = buf.data();
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      if (path.empty()) return;
      std::error_code ec;  // remove_all removes links themselves, never what they point to
      std::filesystem::remove_all(path, ec);
    }
  } cleanup{tmp};

  if (chmod(tmp.c_str(), 0755) != 0) throw ToolError(fmt::format("cannot set up {}: {}", tmp, errno_text(errno)));
  merge_header_trees(common, arch, tmp);
  std::string stamp = tmp + "/.complete";
  int fd = open(stamp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 || close(fd) != 0) throw ToolError(fmt::format("cannot write {}: {}", stamp, errno_text(errno)));

  if (rename(tmp.c_str(), dest.c_str()) == 0) {
    cleanup.path.clear();
    return true;
  }
  int err = errno;
  // Another run won the race: use its tree; ours goes with `cleanup`.
  if (path_exists(dest + "/.complete")) return false;
  // Something else holds the name; it is not ours to delete (it may be in use).
  throw ToolError(fmt::format("cannot install {}: {} (remove it to rebuild the cache)", dest, errno_text(err)));
}

KernelHeaderChoice prepare_kernel_headers(const HeaderPlaces& at) {
  struct utsname u;
  uname(&u);
  std::string release = u.release;
  std::string own = at.modules + "/" + release + "/build";
  if (has_kconfig(own)) return {own, "running kernel", ""};

  if (const char* env = std::getenv("BCC_KERNEL_SOURCE")) {
    if (has_kconfig(env)) return {env, "BCC_KERNEL_SOURCE", ""};
    throw ToolError(fmt::format("BCC_KERNEL_SOURCE={} has no include/linux/kconfig.h", env));
  }
  if (path_exists(at.kheaders_archive)) return {"", "kheaders", ""};

  // Debian splits headers into linux-headers-V-common and linux-headers-V-ARCH.
  std::string arch = debian_arch();
  std::vector<std::string> versions;
  for (auto& n : list_dir(at.src)) {
    if (!starts_with(n, "linux-headers-") || !ends_with(n, "-common")) continue;
    std::string v = n.substr(14, n.size() - 14 - 7);
    if (has_kconfig(at.src + "/" + n) && is_directory(at.src + "/linux-headers-" + v + "-" + arch))
      versions.push_back(v);
  }
  if (versions.empty())
    throw ToolError(fmt::format(
        "no kernel headers for {} found; install them (Debian: apt-get install linux-headers-{} "
        "or linux-headers-{}) or set BCC_KERNEL_SOURCE",
        release, release, arch));
  std::sort(versions.begin(), versions.end(), version_less);
  std::string v = versions.back();
  const std::string& cache_root = at.cache;
  std::string name = "kheaders-" + v + "-" + arch;
  std::string dest = cache_root + "/" + name;
  size_t slash = cache_root.rfind('/');
  if (slash != std::string::npos && slash > 0) mkdir(cache_root.substr(0, slash).c_str(), 0755);  // /var/cache
  bool created = ensure_merged_tree(at.src + "/linux-headers-" + v + "-common",
                                    at.src + "/linux-headers-" + v + "-" + arch, cache_root, name);
  setenv("BCC_KERNEL_SOURCE", dest.c_str(), 1);
  // Said once, by the run that sets the tree up; later runs use it silently.
  std::string note = created ? fmt::format("no headers for running kernel {}; using Debian linux-headers-{} ({})",
                                           release, v, dest)
                             : "";
  return {dest, "debian", note};
}

}  // namespace lockkit
