// resolve.cc: start an in-process p2proxy client (C++ API) from its state dir, print the
// overlay address of a private name and the client's status, then stop.
//
//   resolve STATE_DIR NAME
#include <p2proxy/client.h>
#include <p2proxy/version.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s STATE_DIR NAME   (libp2proxy %s)\n", argv[0], P2PROXY_VERSION_STRING);
    return 2;
  }
  p2proxy::ClientOptions options;
  options.state_dir = argv[1];
  auto client = p2proxy::Client::Start(options);
  if (!client.ok()) {
    std::fprintf(stderr, "start: %s (code %d)\n", client.status().message().c_str(),
                 static_cast<int>(client.status().code()));
    return 1;
  }
  auto address = (*client)->Resolve(argv[2]);
  if (!address.ok()) {
    std::fprintf(stderr, "resolve %s: %s\n", argv[2], address.status().message().c_str());
    return 1;
  }
  std::printf("%s %s\n", argv[2], address->c_str());
  return 0;
}
