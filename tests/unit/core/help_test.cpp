#include <catch2/catch.hpp>

#include <cstdlib>

#include "core/help.h"
#include "core/util.h"

using namespace lockkit;

namespace {

// A spec shaped like the tools': options with and without values and defaults, a positional
// operand, a usage line with two forms.
cxxopts::Options sample_spec() {
  cxxopts::Options spec("sometool", "Does something.");
  spec.custom_help("[options] -p PID [duration] | [options] -- COMMAND [ARGS...]");
  spec.positional_help("");
  spec.add_options()("p,pid", "trace the running process PID", cxxopts::value<std::string>(), "PID")(
      "i,interval", "print a report every SEC seconds", cxxopts::value<std::string>()->default_value("5"), "SEC")(
      "reset", "per-interval reports")("folded", "folded stacks", cxxopts::value<std::string>(), "METRIC FILE");
  add_help_options(spec);
  spec.add_options()("duration", "seconds to trace", cxxopts::value<std::vector<std::string>>());
  spec.parse_positional({"duration"});
  return spec;
}

HelpExtras sample_extras() {
  HelpExtras e;
  e.notes = "Output lines:\n  s,a,b\n";
  e.examples = {{"sometool -p 1234", "trace pid 1234"}, {"sometool -- ./app", "start ./app traced"}};
  return e;
}

}  // namespace

TEST_CASE("troff escaping: hyphens, backslashes, leading dots and quotes") {
  CHECK(troff_escape("--pid") == "\\-\\-pid");
  CHECK(troff_escape("a\\b") == "a\\eb");
  CHECK(troff_escape(".x\n'y\nz.") == "\\&.x\n\\&'y\nz.");
}

TEST_CASE("help text: options, operands, notes and examples") {
  auto spec = sample_spec();
  unsetenv("LOCKKIT_HELP_FORMAT");
  std::string h = help_text(spec, sample_extras());
  CHECK(h.find("-p, --pid PID") != std::string::npos);
  CHECK(h.find("--version") != std::string::npos);
  CHECK(h.find("(default: 5)") != std::string::npos);
  // cxxopts leaves the positional operand out of its list; the help names it.
  CHECK(h.find("--duration") == std::string::npos);
  CHECK(h.find("Arguments:\n  duration") != std::string::npos);
  CHECK(h.find("Output lines:\n  s,a,b\n") != std::string::npos);
  CHECK(h.find("sometool -p 1234   # trace pid 1234") != std::string::npos);
}

TEST_CASE("man fragments: every option of the help, in troff, each section marked") {
  auto spec = sample_spec();
  std::string t = help_troff(spec, sample_extras());
  for (const char* s : {"SYNOPSIS", "OPTIONS", "EXAMPLES", "NOTES"})
    CHECK(t.find(std::string(".\\\" lockkit-help ") + s + "\n") != std::string::npos);
  // Two usage forms, two synopsis lines; options bold, operands italic.
  CHECK(t.find(".B sometool\n[\\fIoptions\\fR] \\fB\\-p\\fR \\fIPID\\fR [\\fIduration\\fR]\n.br\n.B sometool\n") !=
        std::string::npos);
  CHECK(t.find("\\fB\\-\\-\\fR \\fICOMMAND\\fR [\\fIARGS\\fR...]") != std::string::npos);
  CHECK(t.find(".TP\n\\fB\\-p\\fR, \\fB\\-\\-pid\\fR \\fIPID\\fR\nTrace the running process PID.\n") !=
        std::string::npos);
  CHECK(t.find("Print a report every SEC seconds. Default: 5.\n") != std::string::npos);
  CHECK(t.find("\\fB\\-\\-reset\\fR\nPer\\-interval reports.\n") != std::string::npos);
  CHECK(t.find("\\fB\\-\\-folded\\fR \\fIMETRIC\\fR \\fIFILE\\fR\n") != std::string::npos);
  CHECK(t.find("\\fB\\-\\-version\\fR\n") != std::string::npos);
  CHECK(t.find(".TP\n\\fIduration\\fR\nSeconds to trace.\n") != std::string::npos);
  CHECK(t.find(".TP\nTrace pid 1234:\n.B sometool \\-p 1234\n") != std::string::npos);
  // A paragraph is filled; indented lines are kept as they are.
  CHECK(t.find(".PP\nOutput lines:\n.PP\n.nf\n  s,a,b\n.fi\n") != std::string::npos);

  setenv("LOCKKIT_HELP_FORMAT", "man", 1);
  CHECK(help_text(spec, sample_extras()) == t);
  unsetenv("LOCKKIT_HELP_FORMAT");
}

TEST_CASE("a long paragraph of notes is wrapped in --help and filled in the man page") {
  auto spec = sample_spec();
  HelpExtras e;
  std::string para;
  for (int i = 0; i < 40; i++) para += "word" + std::to_string(i) + " ";
  e.notes = para + "\n  kept as it is, however long it is, because it starts with a space and is a format\n";
  unsetenv("LOCKKIT_HELP_FORMAT");
  std::string h = help_text(spec, e);
  size_t at = h.find("word0 ");
  REQUIRE(at != std::string::npos);
  std::string notes = h.substr(at);  // the help ends with the notes: no examples given
  size_t lines = 0;
  for (auto& line : split(notes, '\n')) {
    if (line.empty()) continue;
    lines++;
    if (line[0] != ' ') CHECK(line.size() <= 100);
  }
  CHECK(lines == 4);  // the paragraph (270 characters) on three lines, the indented line whole
  CHECK(notes.find("word39\n  kept as it is") != std::string::npos);

  std::string t = help_troff(spec, e);
  CHECK(t.find(".PP\nword0 word1 ") != std::string::npos);
  CHECK(t.find("word39 \n.PP\n.nf\n  kept as it is") != std::string::npos);
}

TEST_CASE("option summary for a usage line names every option, not the operand") {
  auto spec = sample_spec();
  CHECK(option_summary(spec) == "[-p PID] [-i SEC] [--reset] [--folded METRIC FILE] [-h] [--version]");
}

TEST_CASE("--help and --version are answered, help first") {
  auto spec = sample_spec();
  auto extras = sample_extras();
  std::string text;
  {
    const char* argv[] = {"sometool", "--version"};
    auto res = spec.parse(2, argv);
    REQUIRE(help_requested(res, spec, extras, &text));
    CHECK(text == version_text("sometool"));
    CHECK(text.rfind(std::string("sometool (lockkit) ") + version() + "\n", 0) == 0);
  }
  {
    const char* argv[] = {"sometool", "--version", "-h"};
    auto res = spec.parse(3, argv);
    REQUIRE(help_requested(res, spec, extras, &text));
    CHECK(text.find("Usage:") != std::string::npos);
  }
  {
    const char* argv[] = {"sometool", "-p", "1"};
    auto res = spec.parse(3, argv);
    CHECK_FALSE(help_requested(res, spec, extras, &text));
  }
}
