# Helpers that give every thinwire target the same language level and warnings, without global
# flags: consumers of the exported targets never inherit our warning set.

function(thinwire_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                             -Wno-sign-conversion
                                             # Options are structs with default member
                                             # initializers, filled with partial designated
                                             # initializers (STYLE.md): not a mistake.
                                             -Wno-missing-field-initializers)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # g++ 12 at -O3 reports -Wrestrict inside std::string's operator+ (a libstdc++ false
      # positive, GCC bug 105329); it would make every release build noisy.
      target_compile_options(${target} PRIVATE -Wno-restrict)
    endif()
  endif()
endfunction()

# thinwire_add_library(<layer> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# Defines thinwire_<layer>, exported and aliased as thinwire::<layer>.
function(thinwire_add_library layer)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target thinwire_${layer})
  add_library(${target} STATIC ${arg_SOURCES})
  add_library(thinwire::${layer} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${layer} POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${arg_DEPS} PRIVATE ${arg_PRIVATE_DEPS})
  thinwire_set_warnings(${target})
  set_property(GLOBAL APPEND PROPERTY THINWIRE_LIBRARIES ${target})
endfunction()
