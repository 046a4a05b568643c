# Script mode: writes OUT, a C++ file defining lockkit::probes::SYMBOL as the
# concatenation of INPUTS. Each input is split into raw-string chunks so that no
# compiler limit on string literal length is hit.
string(REPLACE "|" ";" INPUTS "${INPUTS}")
set(body "")
foreach(f ${INPUTS})
  file(READ ${f} text)
  get_filename_component(name ${f} NAME)
  string(APPEND body "// ---- ${name} ----\n${text}\n")
endforeach()
string(LENGTH "${body}" len)
set(chunks "")
set(pos 0)
while(pos LESS len)
  string(SUBSTRING "${body}" ${pos} 8000 piece)
  string(APPEND chunks "  R\"lkbpf(${piece})lkbpf\"\n")
  math(EXPR pos "${pos} + 8000")
endwhile()
file(WRITE ${OUT} "// Generated at build time from the probes/ directory. Do not edit.\n#include <string>\nnamespace lockkit::probes {\nextern const std::string ${SYMBOL};\nconst std::string ${SYMBOL} =\n${chunks};\n}\n")
