// locktrace: per-lock futex statistics from the futex system calls and scheduler switches.
#include "locktrace/tool.h"

int main(int argc, char** argv) { return lockkit::tool_main("locktrace", argc, argv, lockkit::locktrace::make_tool); }
