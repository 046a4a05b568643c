// mklockstat: time spent waiting for kernel locks, per thread and lock, in fixed periods.
#include "mklockstat/tool.h"

int main(int argc, char** argv) { return lockkit::tool_main("mklockstat", argc, argv, lockkit::mklockstat::make_tool); }
