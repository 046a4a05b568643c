// Profiles in pprof's format (the gzipped profile.proto of github.com/google/pprof), written once
// for every tool: `go tool pprof`, speedscope, Grafana Pyroscope and Parca read them.
//
// A tool hands over a plain list of samples (values, a leaf-first stack of Frames, labels); the
// writer builds the string table, functions (with source file names where debug information has
// them), locations and mappings (path, range, build-id), and writes the gzipped message through an
// OutputFile, so a failed run keeps an existing file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/output.h"
#include "core/symbolizer.h"

namespace lockkit {

struct ProfileLabel {
  std::string key;
  std::string str;     // a string label when !numeric
  int64_t num = 0;     // a numeric label when numeric
  std::string unit;    // of a numeric label ("" for none)
  bool numeric = false;
};

struct ProfileSample {
  std::vector<int64_t> values;  // one per ProfileData::sample_types, same order
  std::vector<Frame> frames;    // leaf first; frames without a mapping become mapping-less locations
  std::vector<ProfileLabel> labels;

  ProfileSample& label(std::string key, std::string value);
  ProfileSample& label(std::string key, int64_t value, std::string unit = "");
};

struct ProfileData {
  struct ValueType {
    std::string type, unit;
  };
  std::vector<ValueType> sample_types;  // e.g. {"contentions","count"}, {"delay","nanoseconds"}
  std::string default_sample_type;      // one of the types, "" for pprof's default (the last)
  std::vector<ProfileSample> samples;
  int64_t time_nanos = 0;               // when collection started, ns since the epoch
  int64_t duration_nanos = 0;
  std::vector<std::string> comments;    // shown by `go tool pprof -comments`
  // The traced program's file: its mapping comes first, as pprof names a profile after its first
  // mapping ("" when there is no one program, e.g. system-wide).
  std::string main_binary;
};

// The Frames behind stacks a report keeps as text (formatted frames, or function names): tools
// record each stack as they name it, and look it up when building the profile. "[lost stack]"
// (a stack BPF could not store) is a frame of that name.
class StackFrameIndex {
 public:
  // Remembers `frames` for `text` (the first recorded wins) and returns `text`.
  const std::vector<std::string>& add(const std::vector<std::string>& text, const std::vector<Frame>& frames);
  // The frames recorded for `text`; for text never recorded, frames named by its entries.
  std::vector<Frame> frames(const std::vector<std::string>& text) const;

 private:
  std::map<std::vector<std::string>, std::vector<Frame>> index_;
};

// Frames named only by a function (a lost stack, a kernel symbol): no address, no mapping.
Frame named_frame(std::string function, std::string module = "");

// The serialized (uncompressed) profile.proto message. Throws ToolError when a sample has a
// different number of values than there are sample types.
std::string encode_profile(const ProfileData& p);
// `data` compressed as one gzip member (zlib).
std::string gzip_bytes(const std::string& data);
// Encodes, compresses and writes the profile to `out`, then commits it.
void write_profile(OutputFile& out, const ProfileData& p);

// Nanoseconds since the epoch, now (CLOCK_REALTIME), for ProfileData::time_nanos.
int64_t wall_clock_ns();

}  // namespace lockkit
