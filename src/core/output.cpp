#include "core/output.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <random>

#include "core/util.h"

namespace lockkit {

// A stream buffer over a file descriptor that remembers the first write error's errno.
class OutputFile::FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd), buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
  ~FdBuf() override { close_fd(); }
  int fd() const { return fd_; }
  int error() const { return error_; }
  // Closes the descriptor; returns false (errno kept in error()) when close reports a failure.
  bool close_fd() {
    if (fd_ < 0) return true;
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0 && errno != EINTR && !error_) error_ = errno;
    return rc == 0 || errno == EINTR;
  }

 protected:
  int_type overflow(int_type c) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    const char* p = pbase();
    size_t left = size_t(pptr() - pbase());
    while (left > 0 && !error_) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n < 0 ? errno : EIO;
        break;
      }
      p += n;
      left -= size_t(n);
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return !error_;
  }

  int fd_;
  int error_ = 0;
  std::vector<char> buf_;
};

namespace detail {

std::string random_suffix() {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string s;
  for (int i = 0; i < 6; i++) s += kChars[rd() % (sizeof(kChars) - 1)];
  return s;
}

int create_temporary(int dir_fd, const std::string& target, mode_t mode, std::string* name,
                     const std::function<std::string()>& suffix) {
  // Keep the name within NAME_MAX (255) whatever the target's length.
  std::string stem = "." + target.substr(0, 200) + ".lockkit-";
  for (int attempt = 0; attempt < 100; attempt++) {
    std::string n = stem + (suffix ? suffix() : random_suffix());
    // O_EXCL: fails on any existing name, a symbolic link included, rather than opening it.
    int fd = ::openat(dir_fd, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd >= 0) {
      *name = n;
      return fd;
    }
    if (errno != EEXIST) return -1;
  }
  errno = EEXIST;
  return -1;
}

}  // namespace detail

OutputFile::OutputFile(const std::string& spec) : spec_(spec) {
  if (spec == "-") {
    stdout_ = &std::cout;
    return;
  }
  if (spec.empty()) throw UsageError("empty output file name");
  auto fail = [&](int err) { return ToolError(fmt::format("cannot write {}: {}", spec, errno_text(err))); };
  size_t slash = spec.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : spec.substr(0, slash);
  base_ = slash == std::string::npos ? spec : spec.substr(slash + 1);
  if (base_.empty() || base_ == "." || base_ == "..") throw fail(EISDIR);
  dir_fd_ = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw fail(errno);
  // From here on a throw must not leak the directory descriptor.
  struct Guard {
    int& fd;
    bool armed = true;
    ~Guard() {
      if (armed && fd >= 0) ::close(fd);
      if (armed) fd = -1;
    }
  } guard{dir_fd_};

  struct stat st;
  bool exists = ::fstatat(dir_fd_, base_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) throw fail(errno);
  bool in_place = false;
  if (exists && S_ISLNK(st.st_mode)) {
    struct stat to;
    bool special = ::fstatat(dir_fd_, base_.c_str(), &to, 0) == 0 && (S_ISCHR(to.st_mode) || S_ISFIFO(to.st_mode));
    if (!special)
      throw ToolError(fmt::format(
          "cannot write {}: it is a symbolic link; outputs replace files and do not follow links "
          "(name the file it points to, or '-' for stdout)",
          spec));
    in_place = true;
  } else if (exists && S_ISDIR(st.st_mode)) {
    throw fail(EISDIR);
  } else if (exists && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    in_place = true;
  } else if (exists && !S_ISREG(st.st_mode)) {
    throw ToolError(fmt::format("cannot write {}: not a regular file", spec));
  }

  int fd;
  if (in_place) {
    // A device or FIFO holds nothing to lose and cannot be renamed onto: write to it directly.
    fd = ::openat(dir_fd_, base_.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) throw fail(errno);
  } else {
    // A replaced file keeps its permissions; the temporary starts private so that nothing is
    // readable before its mode is set.
    fd = detail::create_temporary(dir_fd_, base_, exists ? 0600 : 0644, &tmp_);
    if (fd < 0) throw fail(errno);
    owner_ = ::getpid();
    if (exists && ::fchmod(fd, st.st_mode & 0777) != 0) {
      int err = errno;
      ::close(fd);
      ::unlinkat(dir_fd_, tmp_.c_str(), 0);
      tmp_.clear();
      throw fail(err);
    }
  }
  buf_ = std::make_unique<FdBuf>(fd);
  file_ = std::make_unique<std::ostream>(buf_.get());
  guard.armed = false;
}

OutputFile::~OutputFile() {
  file_.reset();
  buf_.reset();  // closes the descriptor
  // A forked child that unwinds must not remove its parent's temporary.
  if (!tmp_.empty() && owner_ == ::getpid()) ::unlinkat(dir_fd_, tmp_.c_str(), 0);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void OutputFile::commit() {
  if (committed_) return;
  if (is_stdout()) {
    stdout_->flush();
    if (!*stdout_) throw ToolError("error writing stdout");
    committed_ = true;
    return;
  }
  auto fail = [&](int err) { return ToolError(fmt::format("error writing {}: {}", spec_, errno_text(err))); };
  file_->flush();
  if (buf_->error()) throw fail(buf_->error());
  if (!*file_) throw fail(EIO);
  if (!tmp_.empty()) {
    // The content reaches the disk before the name does: after a crash the target holds the old
    // content or the new one, never a truncated file.
    if (::fsync(buf_->fd()) != 0 && errno != EINVAL) throw fail(errno);
  }
  if (!buf_->close_fd()) throw fail(buf_->error());
  if (!tmp_.empty()) {
    if (::renameat(dir_fd_, tmp_.c_str(), dir_fd_, base_.c_str()) != 0)
      throw ToolError(fmt::format("cannot replace {}: {}", spec_, errno_text(errno)));
    tmp_.clear();
  }
  file_->setstate(std::ios::badbit);  // nothing more can be written
  committed_ = true;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); i++) {
    if (i) out += ',';
    out += csv_field(fields[i]);
  }
  return out;
}

std::string folded_line(const std::vector<std::string>& frames_leaf_first, uint64_t value) {
  std::string out;
  for (auto it = frames_leaf_first.rbegin(); it != frames_leaf_first.rend(); ++it) {
    std::string f = *it;
    for (auto& c : f)
      if (c == ';' || c == '\n') c = ':';
    if (!out.empty()) out += ';';
    out += f;
  }
  if (out.empty()) out = "[no stack]";
  return out + " " + std::to_string(value);
}

}  // namespace lockkit
