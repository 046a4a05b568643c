#include "core/json.h"

namespace lockkit {

std::string json_text(const Json& doc, int indent) {
  // ensure_ascii=false keeps valid UTF-8 as it is; `replace` turns each invalid byte into U+FFFD
  // instead of throwing in the middle of a report.
  return doc.dump(indent, ' ', false, Json::error_handler_t::replace);
}

void write_json_document(std::ostream& os, const Json& doc, int indent) {
  os << json_text(doc, indent) << '\n';
}

}  // namespace lockkit
