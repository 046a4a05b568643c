#include "core/output.h"

#include <fmt/format.h>

#include <iostream>

#include "core/util.h"

namespace lockkit {

OutputFile::OutputFile(const std::string& spec) : spec_(spec) {
  if (spec == "-") {
    stdout_ = &std::cout;
    return;
  }
  if (spec.empty()) throw UsageError("empty output file name");
  file_ = std::make_unique<std::ofstream>(spec, std::ios::out | std::ios::trunc);
  if (!*file_) throw ToolError(fmt::format("cannot write {}: {}", spec, errno_text(errno)));
}

void OutputFile::finish() {
  stream().flush();
  if (!stream()) throw ToolError("error writing " + (is_stdout() ? std::string("stdout") : spec_));
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
