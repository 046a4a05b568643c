// JSON documents of every tool: nlohmann::json with keys kept in the order they were added, and one
// way to serialise them that always yields valid UTF-8.
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

namespace lockkit {

// Objects keep insertion order, so documents read in the order the docs describe them.
using Json = nlohmann::ordered_json;

// The document as text, pretty-printed with `indent` spaces (compact when negative), no trailing
// newline. Strings from the traced world (task names, symbols, paths, frames) may hold any bytes:
// bytes that are not valid UTF-8 come out as U+FFFD, so the text is always valid UTF-8 and valid JSON.
std::string json_text(const Json& doc, int indent = 2);

// json_text() followed by a newline.
void write_json_document(std::ostream& os, const Json& doc, int indent = 2);

}  // namespace lockkit
