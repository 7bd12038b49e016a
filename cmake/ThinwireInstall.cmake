# Installs the thinwire:: targets and a package config so that find_package(thinwire) works.
include(CMakePackageConfigHelpers)

get_property(thinwire_libraries GLOBAL PROPERTY THINWIRE_LIBRARIES)
install(TARGETS ${thinwire_libraries} thinwire EXPORT thinwireTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/thinwire DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT thinwireTargets NAMESPACE thinwire::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/thinwire)
configure_package_config_file(cmake/thinwireConfig.cmake.in
  ${PROJECT_BINARY_DIR}/thinwireConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/thinwire)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/thinwireConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/thinwireConfig.cmake
              ${PROJECT_BINARY_DIR}/thinwireConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/thinwire)
