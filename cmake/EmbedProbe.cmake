# embed_probe(<target> <symbol> <file>...)
# Concatenates the probe header(s) and program text into one C++ string
# constant <symbol> (namespace lockkit::probes) compiled into <target>, so
# that the binary carries exactly the BPF text it was built with.
function(embed_probe target symbol)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}_embedded.cpp)
  set(inputs "")
  foreach(f ${ARGN})
    list(APPEND inputs ${CMAKE_SOURCE_DIR}/probes/${f})
  endforeach()
  string(REPLACE ";" "|" joined "${inputs}")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol} "-DINPUTS=${joined}"
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_files.cmake
    DEPENDS ${inputs} ${CMAKE_SOURCE_DIR}/cmake/embed_files.cmake
    COMMENT "Embedding BPF program ${symbol}"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
