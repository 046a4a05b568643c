// A small streaming JSON writer (objects, arrays, strings, numbers, null), pretty-printed.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace lockkit {

std::string json_escape(const std::string& s);

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& os, int indent = 2) : os_(os), indent_(indent) {}
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(const std::string& k);
  JsonWriter& value(const std::string& v);
  JsonWriter& value(const char* v) { return value(std::string(v)); }
  JsonWriter& value(uint64_t v);
  JsonWriter& value(int64_t v);
  JsonWriter& value(int v) { return value(int64_t(v)); }
  JsonWriter& value(unsigned v) { return value(uint64_t(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  JsonWriter& string_array(const std::vector<std::string>& v);

 private:
  void before_value();
  void newline();
  std::ostream& os_;
  int indent_;
  struct Level {
    bool array;
    bool empty;
  };
  std::vector<Level> stack_;
  bool after_key_ = false;
};

}  // namespace lockkit
