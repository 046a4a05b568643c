#include "core/help.h"

#include <bcc/bcc_version.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "core/util.h"

#ifndef LOCKKIT_VERSION
#error "LOCKKIT_VERSION comes from CMake's project version"
#endif

namespace lockkit {

const char* version() { return LOCKKIT_VERSION; }

std::string version_text(const std::string& tool) {
  return fmt::format("{} (lockkit) {}\nBPF programs compiled at run time by BCC {}\n", tool, version(),
                     LIBBCC_VERSION);
}

void add_help_options(cxxopts::Options& spec) {
  spec.add_options()("h,help", "show this help")("version", "show the version and exit");
}

namespace {

// The usage line cxxopts prints: "<program> <custom help> <positional help>".
std::string usage_line(const cxxopts::Options& spec) {
  std::string h = spec.help();
  const std::string mark = "Usage:\n  ";
  size_t at = h.find(mark);
  if (at == std::string::npos) return spec.program();
  at += mark.size();
  size_t end = h.find('\n', at);
  std::string line = h.substr(at, end == std::string::npos ? std::string::npos : end - at);
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// Options cxxopts leaves out of its list (positional operands such as "duration") are those whose
// "--name" the list does not show.
bool shown_as_option(const std::string& help, const cxxopts::HelpOptionDetails& d) {
  return d.l.empty() || help.find("--" + d.l[0]) != std::string::npos;
}

std::vector<const cxxopts::HelpOptionDetails*> operands(const cxxopts::Options& spec) {
  std::string h = spec.help();
  std::vector<const cxxopts::HelpOptionDetails*> out;
  for (auto& d : spec.group_help("").options)
    if (!shown_as_option(h, d)) out.push_back(&d);
  return out;
}

// The width of --help, as the tools set it for cxxopts.
constexpr size_t kWidth = 100;

// `text` broken into lines of at most `width` characters at spaces (a longer word stays whole).
std::string wrap(const std::string& text, size_t width) {
  std::istringstream words(text);
  std::string w, out, line;
  while (words >> w) {
    if (!line.empty() && line.size() + 1 + w.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w;
  }
  return out + line;
}

std::string sentence(std::string s) {
  if (!s.empty() && std::islower(static_cast<unsigned char>(s[0]))) s[0] = char(std::toupper(s[0]));
  if (!s.empty() && s.back() != '.' && s.back() != ':') s += '.';
  return s;
}

// `mid_line`: the text does not start a line (no '.' or '\'' there needs guarding).
std::string escape(const std::string& text, bool mid_line) {
  std::string out;
  bool line_start = !mid_line;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
  }
  return out;
}

std::string bold(const std::string& s) { return "\\fB" + escape(s, true) + "\\fR"; }
std::string italic(const std::string& s) { return "\\fI" + escape(s, true) + "\\fR"; }

// One word of a usage line: options bold, operands and metavariables italic, brackets plain.
std::string synopsis_word(const std::string& w) {
  if (w == "|") return "|";
  size_t b = 0, e = w.size();
  while (b < e && (w[b] == '[' || w[b] == '(')) b++;
  while (e > b && (w[e - 1] == ']' || w[e - 1] == ')' || w[e - 1] == '.')) e--;
  std::string core = w.substr(b, e - b);
  std::string styled = core.empty() ? "" : core[0] == '-' ? bold(core) : italic(core);
  return escape(w.substr(0, b), true) + styled + escape(w.substr(e), true);
}

}  // namespace

std::string troff_escape(const std::string& text) { return escape(text, false); }

std::string option_summary(const cxxopts::Options& spec) {
  std::string h = spec.help();
  std::string out;
  for (auto& d : spec.group_help("").options) {
    if (!shown_as_option(h, d)) continue;
    std::string name = !d.s.empty() ? "-" + d.s : "--" + d.l[0];
    if (!d.is_boolean) name += " " + (d.arg_help.empty() ? std::string("ARG") : d.arg_help);
    out += (out.empty() ? "[" : " [") + name + "]";
  }
  return out;
}

std::string help_troff(const cxxopts::Options& spec, const HelpExtras& extras) {
  std::ostringstream o;
  o << ".\\\" lockkit-help SYNOPSIS\n";
  // Alternative forms ("A | B" at the top level of the usage line) go on lines of their own.
  std::string usage = usage_line(spec);
  std::string program = spec.program();
  std::vector<std::string> forms;
  {
    std::string rest = usage.substr(std::min(usage.size(), program.size()));
    size_t pos;
    while ((pos = rest.find(" | ")) != std::string::npos) {
      forms.push_back(rest.substr(0, pos));
      rest = rest.substr(pos + 3);
    }
    forms.push_back(rest);
  }
  o << ".nh\n";  // no hyphenation inside option names and operands
  for (size_t i = 0; i < forms.size(); i++) {
    if (i) o << ".br\n";
    o << ".B " << program << "\n";
    std::istringstream words(forms[i]);
    std::string w, line;
    while (words >> w) line += (line.empty() ? "" : " ") + synopsis_word(w);
    if (!line.empty()) o << line << "\n";
  }

  o << ".hy\n";
  o << ".\\\" lockkit-help OPTIONS\n";
  std::string h = spec.help();
  for (auto& d : spec.group_help("").options) {
    if (!shown_as_option(h, d)) continue;
    std::string tag;
    if (!d.s.empty()) tag = bold("-" + d.s);
    for (auto& l : d.l) tag += (tag.empty() ? "" : ", ") + bold("--" + l);
    if (!d.is_boolean) {
      std::string arg = d.arg_help.empty() ? "ARG" : d.arg_help;
      std::istringstream parts(arg);  // "METRIC FILE": each word italic
      std::string p;
      while (parts >> p) tag += " " + italic(p);
    }
    std::string desc = sentence(d.desc);
    if (d.has_default && !d.is_boolean && !d.default_value.empty())
      desc += " Default: " + d.default_value + ".";
    o << ".TP\n" << tag << "\n" << troff_escape(desc) << "\n";
  }
  for (auto* d : operands(spec))
    o << ".TP\n" << italic(d->l.empty() ? d->s : d->l[0]) << "\n" << troff_escape(sentence(d->desc)) << "\n";

  o << ".\\\" lockkit-help EXAMPLES\n";
  for (auto& e : extras.examples) {
    std::string what = sentence(e.what);
    if (!what.empty() && what.back() == '.') what.back() = ':';
    o << ".TP\n" << troff_escape(what) << "\n.B " << escape(e.command, true) << "\n";
  }

  o << ".\\\" lockkit-help NOTES\n";
  // Lines that start with a space are shown as they are (formats, commands); the others are
  // paragraphs, filled by the formatter.
  bool verbatim = false, paragraph = false;
  for (auto& line : split(extras.notes, '\n')) {
    if (line.empty()) {
      paragraph = false;
      continue;
    }
    bool indented = line[0] == ' ';
    if (indented && !verbatim) o << ".PP\n.nf\n";
    if (!indented && verbatim) o << ".fi\n";
    if (!indented && !paragraph) o << ".PP\n";
    verbatim = indented;
    paragraph = !indented;
    o << troff_escape(line) << "\n";
  }
  if (verbatim) o << ".fi\n";
  return o.str();
}

std::string help_text(const cxxopts::Options& spec, const HelpExtras& extras) {
  const char* format = std::getenv("LOCKKIT_HELP_FORMAT");
  if (format && std::string(format) == "man") return help_troff(spec, extras);

  std::string out = spec.help();
  auto ops = operands(spec);
  if (!ops.empty()) {
    // Operand descriptions line up with the options' (the column where "--help"'s text starts).
    size_t column = 30;
    size_t at = out.find("--help ");
    if (at != std::string::npos) {
      size_t line = out.rfind('\n', at) + 1;
      size_t text = out.find_first_not_of(' ', at + 6);
      if (text != std::string::npos && text > line) column = text - line;
    }
    out += "\nArguments:\n";
    for (auto* d : ops) {
      std::string name = "  " + (d->l.empty() ? d->s : d->l[0]);
      out += name + std::string(column > name.size() ? column - name.size() : 2, ' ') + d->desc + "\n";
    }
  }
  if (!extras.notes.empty()) {
    out += "\n";
    for (auto& line : split(extras.notes, '\n')) out += (line.empty() || line[0] == ' ' ? line : wrap(line, kWidth)) + "\n";
    while (ends_with(out, "\n\n")) out.pop_back();
  }
  if (!extras.examples.empty()) {
    out += "\nExamples:\n";
    size_t width = 0;
    for (auto& e : extras.examples) width = std::max(width, e.command.size());
    width = std::min<size_t>(width, 48);
    for (auto& e : extras.examples) {
      if (e.command.size() > width)
        out += fmt::format("  {}\n  {:<{}}  # {}\n", e.command, "", width, e.what);
      else
        out += fmt::format("  {:<{}}  # {}\n", e.command, width, e.what);
    }
  }
  return out;
}

bool help_requested(const cxxopts::ParseResult& res, const cxxopts::Options& spec, const HelpExtras& extras,
                    std::string* text) {
  if (res.count("help")) {
    *text = help_text(spec, extras);
    return true;
  }
  if (res.count("version")) {
    *text = version_text(spec.program());
    return true;
  }
  return false;
}

}  // namespace lockkit
