# cmake --install: headers, both libraries, pkg-config file, CMake package (uepoll::uepoll).
#
#   <prefix>/include/uepoll/...                  every public header, detail/ included
#   <prefix>/<libdir>/libuepoll.so.<major>       SONAME libuepoll.so.<major> (+ libuepoll.so link)
#   <prefix>/<libdir>/libuepoll.a
#   <prefix>/<libdir>/pkgconfig/uepoll.pc        relocatable: paths relative to the file itself
#   <prefix>/<libdir>/cmake/uepoll/              uepollConfig.cmake: uepoll::uepoll (shared),
#                                                uepoll::uepoll_static (archive)
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/uepoll DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

# Both libraries share OUTPUT_NAME uepoll; in the package the archive is uepoll::uepoll_static so
# that the two exported names differ (an export set cannot hold two targets named uepoll).
set_target_properties(uepoll_static PROPERTIES EXPORT_NAME uepoll_static)
install(TARGETS uepoll_shared uepoll_static EXPORT uepollTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})  # include dirs: the targets' INSTALL_INTERFACE
install(EXPORT uepollTargets NAMESPACE uepoll:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uepoll)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/uepollConfig.cmake.in
  ${PROJECT_BINARY_DIR}/uepollConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uepoll)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/uepollConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/uepollConfig.cmake ${PROJECT_BINARY_DIR}/uepollConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uepoll)

# uepoll.pc. `cmake --install --prefix P` does not reconfigure, so CMAKE_INSTALL_PREFIX (known
# at configure time) may not be where the file ends up: its paths are relative to ${pcfiledir}.
set(_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${_pc_dir}")
  set(UEPOLL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _pc_up "/uepoll-prefix/${_pc_dir}" "/uepoll-prefix")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(UEPOLL_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
    set(UEPOLL_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
  else()
    set(UEPOLL_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
  endif()
endforeach()
# libuepoll.a is C++: a C program that links it statically needs the C++ runtime too.
if(CMAKE_CXX_FLAGS MATCHES "-stdlib=libc\\+\\+")
  set(UEPOLL_PC_CXX_RUNTIME "-lc++")
else()
  set(UEPOLL_PC_CXX_RUNTIME "-lstdc++")
endif()
# An instrumented build's libraries need the sanitizer runtimes in every program that links them.
set(UEPOLL_PC_SANITIZE "")
if(UEPOLL_SANITIZE)
  set(UEPOLL_PC_SANITIZE " -fsanitize=${UEPOLL_SANITIZE}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/uepoll.pc.in ${PROJECT_BINARY_DIR}/uepoll.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/uepoll.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The same requirement for CMake users of an instrumented build.
if(UEPOLL_SANITIZE)
  foreach(_lib uepoll_shared uepoll_static)
    target_link_options(${_lib} INTERFACE $<INSTALL_INTERFACE:-fsanitize=${UEPOLL_SANITIZE}>)
  endforeach()
endif()
