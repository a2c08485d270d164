#!/usr/bin/env bash
# Installs libhepml for C++ users:
#   PREFIX/lib/libhepml.so, PREFIX/include/hepml/{hepml.h,hepml.hpp},
#   PREFIX/lib/cmake/hepml/hepmlConfig.cmake (+ version file; target hepml::hepml),
#   PREFIX/lib/pkgconfig/hepml.pc
#
#   cxx-bridge/install.sh PREFIX [LIBDIR]
# LIBDIR: where libhepml.so was built (default: builds it with `cargo build -p hepml-cxx
# --release` and takes it from cargo's target directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:?usage: install.sh PREFIX [LIBDIR]}
libdir=${2:-}
if [ -z "$libdir" ]; then
  (cd "$here/.." && cargo build -p hepml-cxx --release --quiet)
  target=$(cd "$here/.." && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  libdir="$target/release"
fi
[ -f "$libdir/libhepml.so" ] || { echo "install.sh: no libhepml.so in $libdir" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -1)
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
install -d "$prefix/lib" "$prefix/include/hepml" "$prefix/lib/cmake/hepml" "$prefix/lib/pkgconfig"
install -m 755 "$libdir/libhepml.so" "$prefix/lib/libhepml.so"
install -m 644 "$here/include/hepml/hepml.h" "$here/include/hepml/hepml.hpp" "$prefix/include/hepml/"

# Relocatable: paths relative to the config file.
cat > "$prefix/lib/cmake/hepml/hepmlConfig.cmake" <<'CMAKE'
# find_package(hepml) -> imported target hepml::hepml (header-only C++ API over libhepml.so).
get_filename_component(_hepml_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET hepml::hepml)
  add_library(hepml::hepml SHARED IMPORTED)
  set_target_properties(hepml::hepml PROPERTIES
    IMPORTED_LOCATION "${_hepml_prefix}/lib/libhepml.so"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${_hepml_prefix}/include"
    INTERFACE_COMPILE_FEATURES cxx_std_11)
endif()
set(hepml_INCLUDE_DIRS "${_hepml_prefix}/include")
set(hepml_LIBRARIES hepml::hepml)
unset(_hepml_prefix)
CMAKE
cat > "$prefix/lib/cmake/hepml/hepmlConfigVersion.cmake" <<CMAKE
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
CMAKE
cat > "$prefix/lib/pkgconfig/hepml.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: hepml
Description: hepml inference (ONNX dense networks, BDTs, tract/ONNX Runtime) for C++
Version: $version
Libs: -L\${libdir} -lhepml -Wl,-rpath,\${libdir}
Cflags: -I\${includedir}
PC
echo "installed hepml $version into $prefix"
