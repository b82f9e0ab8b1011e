// test_main.cc: Catch2's main, compiled once for every test binary. Like the daemons, the tests
// ignore SIGPIPE: a write to a socket whose peer has gone (libuv writes with write(2), which
// cannot pass MSG_NOSIGNAL) must be an EPIPE error, not the end of the process.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <csignal>

int main(int argc, char* argv[]) {
  std::signal(SIGPIPE, SIG_IGN);
  return Catch::Session().run(argc, argv);
}
