// --help and --version, and the man pages built from them.
//
// A tool's help is its cxxopts spec (usage line, options, their defaults) plus a few free-form
// notes and its examples. The same data renders as text for --help and, when the environment has
// LOCKKIT_HELP_FORMAT=man, as troff fragments (SYNOPSIS, OPTIONS, EXAMPLES, NOTES) that the build
// merges into the tool's man page (docs/man/<tool>.8.in, cmake/man_page.cmake): an option added to
// the spec appears in --help and in the man page without further work.
#pragma once

#include <cxxopts.hpp>

#include <string>
#include <vector>

namespace lockkit {

struct HelpExample {
  std::string command;  // "lockstat -p 1234 10"
  std::string what;     // "trace pid 1234 for 10 seconds"
};

// What --help prints after the option list.
struct HelpExtras {
  // Free text printed before the examples: lines that start with a space as they are (formats,
  // commands), the others as paragraphs (wrapped in --help, filled in the man page).
  std::string notes;
  std::vector<HelpExample> examples;
};

// The project's version (CMake's project version), e.g. "0.1".
const char* version();
// What --version prints: "<tool> (lockkit) <version>" and the BCC it was built against.
std::string version_text(const std::string& tool);

// Adds -h/--help and --version; every tool's spec ends with these.
void add_help_options(cxxopts::Options& spec);

// Every option of `spec` in brackets, for a usage line: "[-h] [-p PID] [--hist HIST] ...".
std::string option_summary(const cxxopts::Options& spec);

// The text of --help: cxxopts' usage and option list, the positional operands (options the spec
// declares positional, e.g. duration), `extras.notes`, then the examples. In man mode (see above)
// the troff fragments instead.
std::string help_text(const cxxopts::Options& spec, const HelpExtras& extras);

// When --help or --version was given: true, with what to print in *text.
bool help_requested(const cxxopts::ParseResult& res, const cxxopts::Options& spec, const HelpExtras& extras,
                    std::string* text);

// Exposed for tests: the troff fragments, whatever the environment says.
std::string help_troff(const cxxopts::Options& spec, const HelpExtras& extras);
// Escapes text for troff: backslashes, hyphens (as \-), a leading '.' or '\''.
std::string troff_escape(const std::string& text);

}  // namespace lockkit
