# P2proxyDeps: finds the libraries p2proxy links, all from Debian's packages (DESIGN.md §10).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(BoringSSL REQUIRED)
find_package(absl REQUIRED CONFIG)
find_package(Protobuf REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares)
if(P2P_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED CONFIG)
endif()
# HTTP/2 (nghttp2) and HTTP/1.1 (http-parser, which ships no pkg-config file) for src/http.
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(HTTP_PARSER_LIBRARY NAMES http_parser)
if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
  message(FATAL_ERROR "http-parser not found: install Debian's libhttp-parser-dev (scripts/setup.sh does)")
endif()
if(NOT TARGET HttpParser::HttpParser)
  add_library(HttpParser::HttpParser UNKNOWN IMPORTED)
  set_target_properties(HttpParser::HttpParser PROPERTIES
    IMPORTED_LOCATION "${HTTP_PARSER_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HTTP_PARSER_INCLUDE_DIR}")
endif()
