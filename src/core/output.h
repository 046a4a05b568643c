// Output sinks and formats shared by the tools: "-" or a file, RFC 4180 CSV fields, folded stacks.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

namespace lockkit {

// An output destination named on the command line: "-" is stdout, anything else a file that is
// replaced atomically, so that a failed or interrupted run never destroys an existing file.
//
// The constructor creates a temporary file ".<name>.lockkit-XXXXXX" in the target's directory
// (exclusively, never through a symbolic link), so a bad path or an unwritable directory fails
// before tracing starts. Everything written goes into that temporary; commit() flushes it, syncs it
// and renames it onto the target. An output that is destroyed without commit() (an exception, an
// early return) removes its temporary and leaves the target as it was.
//
// A new file gets mode 0644 under the umask; a replaced regular file keeps its permission bits (the
// new file belongs to the user running the tool). A symbolic link at the target is refused rather
// than followed or replaced, unless it leads to a character device or FIFO (/dev/stdout, /dev/null,
// a pipe): those, like a named device or FIFO, are written in place, since there is nothing to
// replace. mklockstat streams its log into the temporary while it runs: a run killed by SIGKILL
// leaves the old file untouched and the temporary behind, recognisable by its name.
class OutputFile {
 public:
  explicit OutputFile(const std::string& spec);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return file_ ? *file_ : *stdout_; }
  const std::string& spec() const { return spec_; }
  bool is_stdout() const { return !file_; }
  // The temporary being written ("" for stdout, a device or FIFO, or once committed).
  const std::string& temporary() const { return tmp_; }

  // Call once the whole content is written: flushes (a write error is a ToolError naming the file
  // and the reason) and, for a file, renames the temporary onto the target. Later calls do nothing.
  void commit();

 private:
  class FdBuf;
  std::string spec_;
  std::string base_;    // the target's name within its directory
  std::string tmp_;     // the temporary's name within that directory
  int dir_fd_ = -1;     // the target's directory, opened once so every step names the same one
  pid_t owner_ = 0;     // only the process that created the temporary removes it
  bool committed_ = false;
  std::unique_ptr<FdBuf> buf_;
  std::unique_ptr<std::ostream> file_;
  std::ostream* stdout_ = nullptr;
};

namespace detail {
// Creates a new file for writing in `dir_fd` named ".<target>.lockkit-<suffix>", trying fresh
// suffixes while a name exists (a planted file or symlink is never opened). `suffix` makes random
// names by default; tests pass their own. Stores the name in `*name`, returns the descriptor, or -1
// with errno set.
int create_temporary(int dir_fd, const std::string& target, mode_t mode, std::string* name,
                     const std::function<std::string()>& suffix = {});
}  // namespace detail

// One CSV field, quoted when it holds a comma, quote, CR or LF (quotes doubled).
std::string csv_field(const std::string& s);
std::string csv_row(const std::vector<std::string>& fields);

// One folded-stack line, "root;...;leaf value": frames are given leaf first, as stacks are read.
// Semicolons inside frames are replaced so that the line splits back into the same frames.
std::string folded_line(const std::vector<std::string>& frames_leaf_first, uint64_t value);

}  // namespace lockkit
