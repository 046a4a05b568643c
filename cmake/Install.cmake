# Man pages (built from docs/man/<tool>.8.in and each tool's own --help), `cmake --install` and the
# Debian package. Everything a tool needs at run time is inside its binary (the BPF programs are
# embedded at build time); the rest is data for people: man pages, docs, the mklockstat analysis
# module and notebook, and the labs.
include(GNUInstallDirs)

set(LOCKKIT_TOOLS "")
set(LOCKKIT_MAN_PAGES "")
foreach(tool lockstat locktrace mklockstat)
  if(NOT TARGET ${tool})
    continue()
  endif()
  list(APPEND LOCKKIT_TOOLS ${tool})
  set(template ${CMAKE_SOURCE_DIR}/docs/man/${tool}.8.in)
  set(page ${CMAKE_BINARY_DIR}/man/${tool}.8)
  add_custom_command(
    OUTPUT ${page} ${page}.gz
    COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:${tool}> -DTEMPLATE=${template} -DOUT=${page}
            -DVERSION=${PROJECT_VERSION} -P ${CMAKE_SOURCE_DIR}/cmake/man_page.cmake
    DEPENDS ${tool} ${template} ${CMAKE_SOURCE_DIR}/cmake/man_page.cmake
    COMMENT "Man page ${tool}(8) from ${tool} --help"
    VERBATIM)
  list(APPEND LOCKKIT_MAN_PAGES ${page}.gz)
endforeach()
add_custom_target(man_pages ALL DEPENDS ${LOCKKIT_MAN_PAGES})

install(TARGETS ${LOCKKIT_TOOLS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${LOCKKIT_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(PROGRAMS ${CMAKE_SOURCE_DIR}/src/mklockstat/analysis/mklockstat_analysis.py
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lockkit/mklockstat)
install(FILES ${CMAKE_SOURCE_DIR}/src/mklockstat/analysis/mklockstat.ipynb
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lockkit/mklockstat)
file(GLOB LOCKKIT_DOCS ${CMAKE_SOURCE_DIR}/docs/*.md)
# README.md beside docs/, so that its links to docs/*.md work where it is installed.
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${LOCKKIT_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
# The labs (tasks, reference solutions, graders), when the source tree has them; Python's caches
# from running them in the source tree stay out.
if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/labs)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/labs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lockkit/labs
          USE_SOURCE_PERMISSIONS PATTERN "__pycache__" EXCLUDE)
endif()
include(cmake/Package.cmake)
