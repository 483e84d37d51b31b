# The C++ libraries taken from a bundle folder (scripts/device_bundle.sh) instead of the system,
# for machines that have a compiler, CMake and a pip torch but no Debian dev packages:
#   WAN_BUNDLE_DIR/include/{nlohmann,spdlog,fmt}   headers (spdlog and fmt used header-only)
#   WAN_BUNDLE_DIR/googletest                      googletest sources, built here
# Defines the targets the system packages would: nlohmann_json::nlohmann_json, spdlog::spdlog,
# and (with the tests) googletest's GTest::gtest and GTest::gtest_main.
foreach(required include/nlohmann/json.hpp include/spdlog/spdlog.h include/fmt/format.h)
  if(NOT EXISTS "${WAN_BUNDLE_DIR}/${required}")
    message(FATAL_ERROR "WAN_BUNDLE_DIR=${WAN_BUNDLE_DIR} has no ${required}: make the bundle "
                        "with scripts/device_bundle.sh on a machine with the Debian packages")
  endif()
endforeach()

# Searched before torch's headers, which carry a newer fmt of their own (as the system-fmt
# links do in the normal build).
include_directories(BEFORE SYSTEM "${WAN_BUNDLE_DIR}/include")

add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
                      INTERFACE_INCLUDE_DIRECTORIES "${WAN_BUNDLE_DIR}/include")
# The bundled spdlog is Debian's, configured for an external fmt: both compile into each user.
add_library(spdlog::spdlog INTERFACE IMPORTED)
set_target_properties(spdlog::spdlog PROPERTIES
                      INTERFACE_INCLUDE_DIRECTORIES "${WAN_BUNDLE_DIR}/include"
                      INTERFACE_COMPILE_DEFINITIONS "SPDLOG_HEADER_ONLY;FMT_HEADER_ONLY")

if(WAN_BUILD_TESTS)
  if(NOT EXISTS "${WAN_BUNDLE_DIR}/googletest/CMakeLists.txt")
    message(FATAL_ERROR "WAN_BUNDLE_DIR=${WAN_BUNDLE_DIR} has no googletest/ sources; remake "
                        "the bundle or pass -DWAN_BUILD_TESTS=OFF")
  endif()
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  add_subdirectory("${WAN_BUNDLE_DIR}/googletest" "${CMAKE_BINARY_DIR}/bundled-googletest"
                   EXCLUDE_FROM_ALL)
  # googletest's own CMake names its targets GTest::gtest and GTest::gtest_main as well.
endif()
