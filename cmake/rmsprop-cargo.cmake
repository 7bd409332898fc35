# rmsprop-cargo.cmake: build librmsprop from this source tree with cargo, from CMake, and
# define the same IMPORTED targets as an installed rmsprop's rmsprop-config.cmake:
#
#   rmsprop::rmsprop         the shared library, librmsprop.so (SONAME librmsprop.so.0; a
#                            symlink librmsprop.so.0 -> librmsprop.so is made next to it,
#                            so the programs linked against it run from the build tree)
#   rmsprop::rmsprop_static  the static library, librmsprop.a, with the system libraries
#                            Rust's standard library needs (INTERFACE_LINK_LIBRARIES)
#
# Both carry the include directory with rmsprop.h and rmsprop.hpp. Nothing is downloaded at
# configure time (no FetchContent, no corrosion): a custom target runs
# `cargo build --release --lib` at build time and cargo decides what is out of date.
# Cargo itself needs its dependencies: vendored, in its cache, or from the network; add
# `--offline` or `--locked` with -DRMSPROP_CARGO_FLAGS=... if you want them enforced.
#
# Use: include(path/to/rmsprop/cmake/rmsprop-cargo.cmake), then
#      target_link_libraries(app PRIVATE rmsprop::rmsprop)
#
# Cache variables:
#   CARGO_EXECUTABLE          cargo (found from $CARGO, ~/.cargo/bin, PATH)
#   RMSPROP_CARGO_TARGET_DIR  cargo's target directory ($CARGO_TARGET_DIR, else <source>/target)
#   RMSPROP_CARGO_FLAGS       extra arguments for cargo build (a list)

include_guard(GLOBAL)

if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  message(FATAL_ERROR "rmsprop-cargo.cmake supports Linux (ELF shared objects) only, not ${CMAKE_SYSTEM_NAME}")
endif()

get_filename_component(RMSPROP_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
if(NOT EXISTS "${RMSPROP_SOURCE_DIR}/Cargo.toml")
  message(FATAL_ERROR "rmsprop-cargo.cmake: no Cargo.toml in ${RMSPROP_SOURCE_DIR}")
endif()

set(_rmsprop_cargo_hints)
if(DEFINED ENV{CARGO})
  get_filename_component(_rmsprop_cargo_env_dir "$ENV{CARGO}" DIRECTORY)
  list(APPEND _rmsprop_cargo_hints "${_rmsprop_cargo_env_dir}")
endif()
if(DEFINED ENV{CARGO_HOME})
  list(APPEND _rmsprop_cargo_hints "$ENV{CARGO_HOME}/bin")
endif()
if(DEFINED ENV{HOME})
  list(APPEND _rmsprop_cargo_hints "$ENV{HOME}/.cargo/bin")
endif()
find_program(CARGO_EXECUTABLE cargo HINTS ${_rmsprop_cargo_hints})
if(NOT CARGO_EXECUTABLE)
  message(FATAL_ERROR "cargo not found: install Rust (https://rustup.rs) or set -DCARGO_EXECUTABLE=/path/to/cargo, "
                      "or use an installed rmsprop with -DRMSPROP_USE_INSTALLED=ON")
endif()

if(DEFINED ENV{CARGO_TARGET_DIR})
  set(_rmsprop_default_target_dir "$ENV{CARGO_TARGET_DIR}")
else()
  set(_rmsprop_default_target_dir "${RMSPROP_SOURCE_DIR}/target")
endif()
set(RMSPROP_CARGO_TARGET_DIR "${_rmsprop_default_target_dir}" CACHE PATH "cargo target directory for librmsprop")
set(RMSPROP_CARGO_FLAGS "" CACHE STRING "extra arguments for cargo build (a ;-list), e.g. --offline")

set(_rmsprop_release "${RMSPROP_CARGO_TARGET_DIR}/release")
set(RMSPROP_SHARED_LIBRARY "${_rmsprop_release}/librmsprop.so")
# Must equal the -soname in build.rs (tests/packaging.rs checks that).
set(RMSPROP_SONAME "librmsprop.so.0")
set(RMSPROP_STATIC_LIBRARY "${_rmsprop_release}/librmsprop.a")
set(RMSPROP_INCLUDE_DIR "${RMSPROP_SOURCE_DIR}/include")

# Always run: cargo's own fingerprints decide whether anything is rebuilt (a no-op build
# takes a fraction of a second). BYPRODUCTS lets Ninja know where the libraries come from.
add_custom_target(rmsprop_cargo_build
  COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${RMSPROP_CARGO_TARGET_DIR}"
          "${CARGO_EXECUTABLE}" build --release --lib
          --manifest-path "${RMSPROP_SOURCE_DIR}/Cargo.toml" ${RMSPROP_CARGO_FLAGS}
  # Programs record the SONAME and look for that file at run time (build rpath).
  COMMAND "${CMAKE_COMMAND}" -E create_symlink librmsprop.so "${_rmsprop_release}/${RMSPROP_SONAME}"
  BYPRODUCTS "${RMSPROP_SHARED_LIBRARY}" "${RMSPROP_STATIC_LIBRARY}" "${_rmsprop_release}/${RMSPROP_SONAME}"
  WORKING_DIRECTORY "${RMSPROP_SOURCE_DIR}"
  COMMENT "cargo build --release --lib (librmsprop.so, librmsprop.a) and the ${RMSPROP_SONAME} link"
  USES_TERMINAL
  VERBATIM)

# What `cargo rustc --release -- --print native-static-libs` prints for the staticlib on
# Linux/glibc, less the implicit -lc.
set(RMSPROP_STATIC_SYSTEM_LIBS gcc_s util rt pthread m dl)

add_library(rmsprop::rmsprop SHARED IMPORTED GLOBAL)
set_target_properties(rmsprop::rmsprop PROPERTIES
  IMPORTED_LOCATION "${RMSPROP_SHARED_LIBRARY}"
  IMPORTED_SONAME "${RMSPROP_SONAME}"
  INTERFACE_INCLUDE_DIRECTORIES "${RMSPROP_INCLUDE_DIR}")
add_dependencies(rmsprop::rmsprop rmsprop_cargo_build)

add_library(rmsprop::rmsprop_static STATIC IMPORTED GLOBAL)
set_target_properties(rmsprop::rmsprop_static PROPERTIES
  IMPORTED_LOCATION "${RMSPROP_STATIC_LIBRARY}"
  IMPORTED_LINK_INTERFACE_LANGUAGES "C"
  INTERFACE_INCLUDE_DIRECTORIES "${RMSPROP_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${RMSPROP_STATIC_SYSTEM_LIBS}")
add_dependencies(rmsprop::rmsprop_static rmsprop_cargo_build)

# The version, from the generated header (the crate version).
file(STRINGS "${RMSPROP_INCLUDE_DIR}/rmsprop.h" _rmsprop_version_line REGEX "^#define RMSPROP_VERSION_STRING ")
string(REGEX REPLACE "^#define RMSPROP_VERSION_STRING \"([^\"]*)\".*" "\\1" rmsprop_VERSION "${_rmsprop_version_line}")
set(rmsprop_FOUND TRUE)
message(STATUS "rmsprop ${rmsprop_VERSION}: building from ${RMSPROP_SOURCE_DIR} with ${CARGO_EXECUTABLE} into ${_rmsprop_release}")
