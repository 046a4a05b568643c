# Script mode: writes the man page OUT (and OUT.gz) from TEMPLATE (docs/man/<tool>.8.in) and the built tool
# TOOL's own help. The tool prints its help as troff fragments when LOCKKIT_HELP_FORMAT=man
# (src/core/help.h); each fragment replaces its placeholder in the template:
#   @SYNOPSIS@ @OPTIONS@ @EXAMPLES@ @NOTES@   from the tool
#   @VERSION@ @DATE@                          the project's version, the build date
# A fragment with content and no placeholder is an error: nothing the help says is left out of the
# page. A placeholder whose fragment is empty (a tool without notes) is removed, except @SYNOPSIS@
# and @OPTIONS@, which every tool fills.
cmake_minimum_required(VERSION 3.18)  # @VAR@ in quoted arguments is text, not a variable
set(ENV{LOCKKIT_HELP_FORMAT} man)
execute_process(COMMAND ${TOOL} --help OUTPUT_VARIABLE help ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TOOL} --help failed (${rc}): ${err}")
endif()
file(READ ${TEMPLATE} page)

set(marker ".\\\" lockkit-help ")
foreach(section SYNOPSIS OPTIONS EXAMPLES NOTES)
  string(FIND "${help}" "${marker}${section}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${TOOL} --help (man format) has no ${section} section")
  endif()
  string(LENGTH "${marker}${section}\n" mark_len)
  math(EXPR begin "${at} + ${mark_len}")
  string(SUBSTRING "${help}" ${begin} -1 rest)
  string(FIND "${rest}" "${marker}" next)
  if(NOT next EQUAL -1)
    string(SUBSTRING "${rest}" 0 ${next} rest)
  endif()
  string(STRIP "${rest}" body)
  string(FIND "${page}" "@${section}@" placeholder)
  if(placeholder EQUAL -1)
    if(NOT body STREQUAL "")
      message(FATAL_ERROR "${TEMPLATE} has no @${section}@ for what ${TOOL} --help says there")
    endif()
  else()
    if(body STREQUAL "" AND section MATCHES "SYNOPSIS|OPTIONS")
      message(FATAL_ERROR "${TEMPLATE} has @${section}@ but ${TOOL} --help says nothing there")
    endif()
    if(body STREQUAL "")
      string(REPLACE "@${section}@\n" "" page "${page}")
    else()
      string(REPLACE "@${section}@" "${body}" page "${page}")
    endif()
  endif()
endforeach()

string(TIMESTAMP date "%Y-%m-%d" UTC)  # SOURCE_DATE_EPOCH, when set, makes it reproducible
string(REPLACE "@VERSION@" "${VERSION}" page "${page}")
string(REPLACE "@DATE@" "${date}" page "${page}")
string(REGEX MATCH "@[A-Z_]+@" left "${page}")
if(left)
  message(FATAL_ERROR "${TEMPLATE}: unknown placeholder ${left}")
endif()
file(WRITE ${OUT} "${page}")
# Installed compressed, as Debian policy asks (-n: no name or time stamp, so the same page gives
# the same bytes).
execute_process(COMMAND gzip -9nkf ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${OUT} failed (${rc})")
endif()
