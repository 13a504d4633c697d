# cmake --install: headers, both libraries, pkg-config file, CMake package (uepoll::uepoll).
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/uepoll DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS uepoll_shared uepoll_static EXPORT uepollTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT uepollTargets NAMESPACE uepoll:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uepoll)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/uepollConfig.cmake.in
  ${PROJECT_BINARY_DIR}/uepollConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uepoll)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/uepollConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/uepollConfig.cmake ${PROJECT_BINARY_DIR}/uepollConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uepoll)

configure_file(${PROJECT_SOURCE_DIR}/cmake/uepoll.pc.in ${PROJECT_BINARY_DIR}/uepoll.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/uepoll.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
