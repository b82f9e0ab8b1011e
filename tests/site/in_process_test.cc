// in_process_test.cc: InProcessTargets hands each connection to the listener of its port as one
// end of a socketpair, with the peer; no listener, no connection.
#include "site/in_process.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include "net/loop.h"

namespace p2proxy {
namespace {

struct Recorder : net::StreamHandler {
  std::string got;
  bool eof = false;
  void OnData(base::ByteSpan data) override { got.append(reinterpret_cast<const char*>(data.data()), data.size()); }
  void OnEnd() override { eof = true; }
  void OnError(const absl::Status&) override { eof = true; }
};

TEST_CASE("InProcessTargets: listen, refusals, and a connection handed over with its peer", "[site]") {
  net::Loop loop;
  site::InProcessTargets targets;
  CHECK(targets.Listen(0, [](int, const site::InProcessPeer&) {}).code() == absl::StatusCode::kInvalidArgument);

  site::InProcessPeer peer;
  peer.resource = "app";
  peer.user = "alice";
  peer.roles = {"staff"};
  peer.address = "100.96.0.5";
  peer.port = 40000;
  auto none = targets.Connect(loop, 7070, peer);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == absl::StatusCode::kUnavailable);
  CHECK(targets.handed() == 0);

  std::vector<int> fds;
  std::vector<site::InProcessPeer> peers;
  REQUIRE(targets.Listen(7070, [&](int fd, const site::InProcessPeer& p) {
    fds.push_back(fd);
    peers.push_back(p);
  }).ok());
  CHECK(targets.listening(7070));
  CHECK(targets.Listen(7070, [](int, const site::InProcessPeer&) {}).code() == absl::StatusCode::kAlreadyExists);

  auto stream = targets.Connect(loop, 7070, peer);
  REQUIRE(stream.ok());
  REQUIRE(fds.size() == 1);
  CHECK(peers[0].user == "alice");
  CHECK(peers[0].roles == std::vector<std::string>{"staff"});
  CHECK(peers[0].resource == "app");
  CHECK(peers[0].port == 40000);
  CHECK(targets.handed() == 1);

  // Bytes flow both ways between the site's stream and the listener's descriptor.
  Recorder rec;
  (*stream)->SetHandler(&rec);
  const std::string ping = "ping";
  (*stream)->Write(base::ByteSpan(reinterpret_cast<const uint8_t*>(ping.data()), ping.size()));
  REQUIRE(loop.RunUntil([&] { return (*stream)->WriteQueueSize() == 0; }, absl::Seconds(5)));
  char buf[16];
  REQUIRE(::read(fds[0], buf, sizeof buf) == 4);
  CHECK(std::string(buf, 4) == "ping");
  REQUIRE(::write(fds[0], "pong", 4) == 4);
  ::close(fds[0]);
  REQUIRE(loop.RunUntil([&] { return rec.eof; }, absl::Seconds(5)));
  CHECK(rec.got == "pong");

  // After Unlisten the port refuses again.
  targets.Unlisten(7070);
  CHECK_FALSE(targets.listening(7070));
  CHECK(targets.Connect(loop, 7070, peer).status().code() == absl::StatusCode::kUnavailable);
  (*stream)->Close();
  stream->reset();
  for (int i = 0; i < 4; ++i) loop.RunOnce(false);
}

}  // namespace
}  // namespace p2proxy
