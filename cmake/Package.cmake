# `cmake --build build --target package`: a Debian package of what `cmake --install` installs,
# under /usr. Depends are computed by dpkg-shlibdeps from the binaries (libbpfcc for libbcc, libelf1,
# libdw1, libfmt9, libstdc++6, ...); what is only used at run time in some cases is recommended or
# suggested.
execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE LOCKKIT_DEB_ARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT LOCKKIT_DEB_ARCH)
  set(LOCKKIT_DEB_ARCH amd64)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lockkit)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "lockkit maintainers <lockkit@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "lock contention tracing on BPF: lockstat, locktrace, mklockstat")
# The long description under the summary line (CPack indents it for the control file).
set(CPACK_PACKAGE_DESCRIPTION
  "lockstat profiles the pthread locks of one process with uprobes (wait and
hold time per lock, thread and call stack); locktrace collects per-lock futex
statistics from the futex system calls and context switches; mklockstat logs
kernel lock contention per thread and lock in fixed periods, with an analysis
module and notebook. The BPF programs are compiled at run time by BCC for the
running kernel, which needs its headers.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${LOCKKIT_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# BCC compiles the BPF programs against the running kernel's headers: Debian's metapackage follows
# the kernel flavour. Where the kernel ships its headers in /sys/kernel/kheaders.tar.xz, BCC
# unpacks them with tar, which needs xz. libc6-dbg names libc's internal functions in stacks.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "linux-headers-${LOCKKIT_DEB_ARCH}, xz-utils, libc6-dbg")
# The mklockstat analysis module and notebook.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3, python3-pandas, python3-matplotlib, jupyter-nbconvert, python3-ipykernel")
include(CPack)
