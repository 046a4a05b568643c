#include "core/hist.h"

#include <fmt/format.h>

#include <cmath>

#include "core/json.h"

namespace lockkit {

void Log2Hist::add_slot(uint32_t slot, uint64_t count) {
  if (slot >= slots_.size()) slot = uint32_t(slots_.size() - 1);
  slots_[slot] += count;
}

void Log2Hist::merge(const Log2Hist& o) {
  for (size_t i = 0; i < slots_.size(); i++) slots_[i] += o.slots_[i];
}

void Log2Hist::scale(double factor) {
  for (auto& s : slots_) s = uint64_t(std::llround(double(s) * factor));
}

uint64_t Log2Hist::total() const {
  uint64_t t = 0;
  for (auto s : slots_) t += s;
  return t;
}

namespace {
bool range(const std::vector<uint64_t>& v, size_t* lo, size_t* hi) {
  *lo = v.size();
  *hi = 0;
  for (size_t i = 0; i < v.size(); i++)
    if (v[i]) {
      if (*lo == v.size()) *lo = i;
      *hi = i;
    }
  return *lo != v.size();
}
}  // namespace

void Log2Hist::print(std::ostream& os, const std::string& unit, int indent) const {
  std::string pad(size_t(indent), ' ');
  size_t lo, hi;
  if (!range(slots_, &lo, &hi)) {
    os << pad << "(no " << unit << " samples)\n";
    return;
  }
  uint64_t max = 0;
  for (size_t i = lo; i <= hi; i++) max = std::max(max, slots_[i]);
  os << pad << fmt::format("{:>20}    {:<10} : {:<9} distribution\n", unit, "", "count");
  for (size_t i = lo; i <= hi; i++) {
    int stars = max ? int((slots_[i] * 40 + max - 1) / max) : 0;
    if (slots_[i] == 0) stars = 0;
    os << pad
       << fmt::format("{:>20} -> {:<10} : {:<9}|{:<40}|\n", slot_low(uint32_t(i)),
                      slot_high(uint32_t(i)), slots_[i], std::string(size_t(stars), '*'));
  }
}

nlohmann::ordered_json Log2Hist::to_json(const std::string& unit) const {
  Json buckets = Json::array();
  size_t lo, hi;
  if (range(slots_, &lo, &hi))
    for (size_t i = lo; i <= hi; i++)
      buckets.push_back({{"low", slot_low(uint32_t(i))}, {"high", slot_high(uint32_t(i))}, {"count", slots_[i]}});
  return {{"unit", unit}, {"buckets", std::move(buckets)}};
}

}  // namespace lockkit
