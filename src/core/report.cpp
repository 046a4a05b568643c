#include "core/report.h"

#include <fmt/format.h>

namespace lockkit {

void Diagnostics::drop(const DropReason& why, uint64_t count) {
  if (count == 0) return;
  for (auto& d : dropped)
    if (d.reason == why.reason) {
      d.count += count;
      return;
    }
  dropped.push_back({why.reason, why.what, count});
}

void Diagnostics::warn(std::string message) { warnings.push_back(std::move(message)); }

void Diagnostics::merge(const Diagnostics& o) {
  for (auto& d : o.dropped) drop(DropReason{d.reason.c_str(), d.what.c_str()}, d.count);
  lost_stacks += o.lost_stacks;
  warnings.insert(warnings.end(), o.warnings.begin(), o.warnings.end());
}

uint64_t Diagnostics::dropped_count(const std::string& reason) const {
  for (auto& d : dropped)
    if (d.reason == reason) return d.count;
  return 0;
}

std::vector<std::string> diagnostic_lines(const Diagnostics& d) {
  std::vector<std::string> out;
  for (auto& x : d.dropped) out.push_back(fmt::format("WARNING: {} {}", x.count, x.what));
  if (d.lost_stacks)
    out.push_back(fmt::format("WARNING: {} stack traces could not be stored; a larger --stack-storage-size keeps more",
                              d.lost_stacks));
  for (auto& w : d.warnings) out.push_back("WARNING: " + w);
  return out;
}

void write_diagnostics(std::ostream& os, const Diagnostics& d) {
  for (auto& line : diagnostic_lines(d)) os << line << '\n';
}

void add_diagnostics(Json& doc, const Diagnostics& d) {
  Json dropped = Json::object();
  for (auto& x : d.dropped) dropped[x.reason] = x.count;
  doc["dropped"] = std::move(dropped);
  doc["lost_stacks"] = d.lost_stacks;
  doc["warnings"] = d.warnings;
}

std::string hex_address(uint64_t addr) { return fmt::format("{:#x}", addr); }

std::string LockIdentity::display() const { return name ? *name : hex_address(address); }

void add_lock_identity(Json& obj, const LockIdentity& id) {
  obj["address"] = hex_address(id.address);
  obj["name"] = id.name ? Json(*id.name) : Json(nullptr);
}

}  // namespace lockkit
