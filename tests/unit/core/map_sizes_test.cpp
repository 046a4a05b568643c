#include <catch2/catch.hpp>

#include "core/map_sizes.h"

using namespace lockkit;

TEST_CASE("map sizes become -D defines after the ones already there, in table order") {
  const MapSize table[] = {{"MAX_STATS", 65536}, {"MAX_DROPS", 7}};
  std::vector<std::string> defines = {"TARGET_PID=1"};
  append_map_sizes(defines, table);
  CHECK(defines == std::vector<std::string>{"TARGET_PID=1", "MAX_STATS=65536", "MAX_DROPS=7"});
}
