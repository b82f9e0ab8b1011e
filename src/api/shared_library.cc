// shared_library.cc: the translation unit of libp2proxy.so itself; everything in it comes from
// the static module p2proxy::api (linked whole) and what that uses.
namespace p2proxy::api {}
