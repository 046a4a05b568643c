// How many entries each BPF map of a probe program holds. Every tool keeps one table of its maps
// (src/<tool>/map_sizes.h); the rows reach the BPF text as -D defines (-DMAX_STATS=65536), which
// the map declarations use (BPF_HASH(stats, ..., MAX_STATS)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lockkit {

struct MapSize {
  const char* define;  // the name the BPF map declaration uses, e.g. "MAX_STATS"
  uint32_t entries;
};

// Appends "DEFINE=entries" for every row of `table`, in order, to `defines`.
template <size_t N>
void append_map_sizes(std::vector<std::string>& defines, const MapSize (&table)[N]) {
  for (const MapSize& m : table) defines.push_back(std::string(m.define) + "=" + std::to_string(m.entries));
}

}  // namespace lockkit
