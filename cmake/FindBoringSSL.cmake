# FindBoringSSL: BoringSSL as Debian's android-libboringssl-dev ships it, headers under
# /usr/include/android and shared libraries under /usr/lib/<multiarch>/android. Defines
# BoringSSL::crypto and BoringSSL::ssl. The libraries sit outside the loader's path, so targets
# that link them carry an RPATH to that directory.
#
# OpenSSL exports the same symbol names; nothing that links OpenSSL may share a process with
# these (DESIGN.md §10), so this module never looks for OpenSSL. It searches only the android
# directories (NO_DEFAULT_PATH) and requires openssl/is_boringssl.h there; the include directory
# is passed with -isystem, ahead of /usr/include, so <openssl/...> resolves to BoringSSL even
# where OpenSSL's headers are installed too.
include(FindPackageHandleStandardArgs)
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_bssl_libdir_hint "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android")
endif()
find_path(BoringSSL_INCLUDE_DIR openssl/is_boringssl.h
  HINTS /usr/include/android NO_DEFAULT_PATH)
find_library(BoringSSL_CRYPTO_LIBRARY NAMES crypto
  HINTS ${_bssl_libdir_hint} /usr/lib/x86_64-linux-gnu/android NO_DEFAULT_PATH)
find_library(BoringSSL_SSL_LIBRARY NAMES ssl
  HINTS ${_bssl_libdir_hint} /usr/lib/x86_64-linux-gnu/android NO_DEFAULT_PATH)
find_package_handle_standard_args(BoringSSL
  REQUIRED_VARS BoringSSL_INCLUDE_DIR BoringSSL_CRYPTO_LIBRARY BoringSSL_SSL_LIBRARY
  FAIL_MESSAGE "BoringSSL not found: install Debian's android-libboringssl-dev (scripts/setup.sh does)")
if(BoringSSL_FOUND)
  get_filename_component(BoringSSL_LIBRARY_DIR "${BoringSSL_CRYPTO_LIBRARY}" DIRECTORY)
  if(NOT TARGET BoringSSL::crypto)
    add_library(BoringSSL::crypto SHARED IMPORTED)
    set_target_properties(BoringSSL::crypto PROPERTIES
      IMPORTED_LOCATION "${BoringSSL_CRYPTO_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${BoringSSL_INCLUDE_DIR}")
    add_library(BoringSSL::ssl SHARED IMPORTED)
    set_target_properties(BoringSSL::ssl PROPERTIES
      IMPORTED_LOCATION "${BoringSSL_SSL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${BoringSSL_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES BoringSSL::crypto)
  endif()
  # Binaries find libcrypto.so.0 in the android directory at run time, built or installed.
  list(APPEND CMAKE_INSTALL_RPATH "${BoringSSL_LIBRARY_DIR}")
endif()
mark_as_advanced(BoringSSL_INCLUDE_DIR BoringSSL_CRYPTO_LIBRARY BoringSSL_SSL_LIBRARY)
