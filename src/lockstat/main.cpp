// lockstat: pthread lock contention of one process, from uprobes.
#include "lockstat/tool.h"

int main(int argc, char** argv) { return lockkit::tool_main("lockstat", argc, argv, lockkit::lockstat::make_tool); }
