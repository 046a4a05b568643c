// Output sinks and formats shared by the tools: "-" or a file, RFC 4180 CSV fields, folded stacks.
#pragma once

#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace lockkit {

// An output destination named on the command line: "-" is stdout, anything else a file that is
// created (truncated) at once, so a bad path fails before tracing starts.
class OutputFile {
 public:
  explicit OutputFile(const std::string& spec);
  std::ostream& stream() { return file_ ? *file_ : *stdout_; }
  const std::string& spec() const { return spec_; }
  bool is_stdout() const { return !file_; }
  // Flushes and reports a write error as ToolError.
  void finish();

 private:
  std::string spec_;
  std::unique_ptr<std::ofstream> file_;
  std::ostream* stdout_ = nullptr;
};

// One CSV field, quoted when it holds a comma, quote, CR or LF (quotes doubled).
std::string csv_field(const std::string& s);
std::string csv_row(const std::vector<std::string>& fields);

// One folded-stack line, "root;...;leaf value": frames are given leaf first, as stacks are read.
// Semicolons inside frames are replaced so that the line splits back into the same frames.
std::string folded_line(const std::vector<std::string>& frames_leaf_first, uint64_t value);

}  // namespace lockkit
