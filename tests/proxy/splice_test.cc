// Splice between kernel TCP streams over loopback: client -> [front] splice [back] -> server.
#include "proxy/splice.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "net/tcp.h"

using namespace p2proxy;

namespace {

struct Sink : net::StreamHandler {
  std::string data;
  bool ended = false;
  absl::Status error;
  std::function<void()> on_data;
  void OnData(base::ByteSpan d) override {
    data.append(d.begin(), d.end());
    if (on_data) on_data();
  }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status& s) override { error = s; }
};

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (auto& c : s) {
    seed = seed * 1103515245u + 12345u;
    c = static_cast<char>(seed >> 23);
  }
  return s;
}

// Rig: a client connects to a front listener; the accepted connection is spliced to a new
// connection to the back server.
struct Rig {
  net::Loop loop;
  std::unique_ptr<net::TcpListener> front, back;
  std::unique_ptr<net::TcpStream> front_conn;  // accepted, waiting for the back connection
  std::unique_ptr<net::TcpStream> server;      // back side, as the server sees it
  Sink server_sink;
  std::unique_ptr<proxy::Splice> splice;
  proxy::Splice::Stats stats;
  absl::Status splice_status = absl::UnknownError("running");
  std::unique_ptr<net::TcpStream> client;
  Sink client_sink;

  explicit Rig(size_t high_water = proxy::Splice::kDefaultHighWater) {
    back = *net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                     [this](std::unique_ptr<net::TcpStream> s) {
                                       server = std::move(s);
                                       server->SetHandler(&server_sink);
                                     });
    front = *net::TcpListener::Listen(
        loop, *base::SocketAddress::Parse("127.0.0.1:0"), [this, high_water](std::unique_ptr<net::TcpStream> in) {
          front_conn = std::move(in);
          net::TcpStream::Connect(loop, back->local_address(),
                                  [this, high_water](absl::StatusOr<std::unique_ptr<net::TcpStream>> out) {
                                    REQUIRE(out.ok());
                                    splice = std::make_unique<proxy::Splice>(
                                        std::move(front_conn), std::move(*out),
                                        [this](proxy::Splice*, const proxy::Splice::Stats& st, const absl::Status& s) {
                                          stats = st;
                                          splice_status = s;
                                        },
                                        high_water);
                                    splice->Start();
                                  });
        });
    net::TcpStream::Connect(loop, front->local_address(), [this](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      REQUIRE(s.ok());
      client = std::move(*s);
      client->SetHandler(&client_sink);
    });
    REQUIRE(loop.RunUntil([&] { return client && server && splice; }, absl::Seconds(10)));
  }
};

void Send(net::Stream& s, const std::string& data) {
  s.Write(base::ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

}  // namespace

TEST_CASE("splice carries bytes both ways and half-closes each direction in turn") {
  Rig rig;
  const std::string up = Pattern(3 << 20, 1), down = Pattern(5 << 20, 2);
  Send(*rig.client, up);
  rig.client->Shutdown();
  // The server sees all of the upload, then end of stream, while its own direction stays open.
  REQUIRE(rig.loop.RunUntil([&] { return rig.server_sink.ended; }, absl::Seconds(30)));
  REQUIRE(rig.server_sink.data == up);
  REQUIRE(absl::IsUnknown(rig.splice_status));  // still running: the other direction is open
  Send(*rig.server, down);
  rig.server->Shutdown();
  REQUIRE(rig.loop.RunUntil([&] { return rig.client_sink.ended; }, absl::Seconds(30)));
  REQUIRE(rig.client_sink.data == down);
  REQUIRE(rig.loop.RunUntil([&] { return !absl::IsUnknown(rig.splice_status); }, absl::Seconds(10)));
  REQUIRE(rig.splice_status.ok());
  REQUIRE(rig.stats.a_to_b == up.size());
  REQUIRE(rig.stats.b_to_a == down.size());
}

TEST_CASE("splice: a reader that stops makes the splice stop reading, so its queue stays bounded") {
  const size_t high_water = 64 * 1024;
  Rig rig(high_water);
  rig.server->PauseReading();  // the target stops reading
  const std::string up = Pattern(48 << 20, 3);
  Send(*rig.client, up);
  // Data backs up: kernel buffers fill, then the splice's queue to the server passes the
  // high-water mark and the splice pauses its read side; from then on the client's own queue
  // holds the rest.
  REQUIRE(rig.loop.RunUntil([&] { return rig.client->WriteQueueSize() > 0; }, absl::Seconds(30)));
  // Let the loop turn a while longer (bounded) so any unbounded growth would show.
  rig.loop.RunUntil([] { return false; }, absl::Milliseconds(300));
  const uint64_t forwarded = rig.splice->stats().a_to_b;
  REQUIRE(forwarded < up.size());
  REQUIRE(rig.client->WriteQueueSize() > up.size() / 2);
  rig.server->ResumeReading();
  rig.client->Shutdown();
  REQUIRE(rig.loop.RunUntil([&] { return rig.server_sink.ended; }, absl::Seconds(60)));
  REQUIRE(rig.server_sink.data == up);
}

TEST_CASE("splice: a reset on one side ends the splice with an error and closes the other") {
  Rig rig;
  Send(*rig.client, "hello");
  REQUIRE(rig.loop.RunUntil([&] { return rig.server_sink.data == "hello"; }, absl::Seconds(10)));
  // Reset the server side: an abortive close sends RST.
  rig.server->Abort();
  rig.server.reset();
  REQUIRE(rig.loop.RunUntil([&] { return !absl::IsUnknown(rig.splice_status); }, absl::Seconds(10)));
  REQUIRE_FALSE(rig.splice_status.ok());
  REQUIRE(rig.loop.RunUntil([&] { return rig.client_sink.ended || !rig.client_sink.error.ok(); }, absl::Seconds(10)));
}

TEST_CASE("splice: Abort resets the first side, closes the second and reports its reason once") {
  Rig rig;
  Send(*rig.client, "hello");
  REQUIRE(rig.loop.RunUntil([&] { return rig.server_sink.data == "hello"; }, absl::Seconds(10)));
  rig.splice->Abort(absl::PermissionDeniedError("revoked: test"));
  // DoneFn ran before Abort returned, with the reason given.
  REQUIRE(absl::IsPermissionDenied(rig.splice_status));
  REQUIRE(rig.splice_status.message() == "revoked: test");
  REQUIRE(rig.stats.a_to_b == 5);
  // The client (side a's peer) sees a reset, not an orderly end; the server sees the end.
  REQUIRE(rig.loop.RunUntil([&] { return !rig.client_sink.error.ok(); }, absl::Seconds(10)));
  REQUIRE_FALSE(rig.client_sink.ended);
  REQUIRE(rig.loop.RunUntil([&] { return rig.server_sink.ended || !rig.server_sink.error.ok(); }, absl::Seconds(10)));
  // A second Abort is a no-op.
  rig.splice_status = absl::UnknownError("untouched");
  rig.splice->Abort(absl::PermissionDeniedError("again"));
  REQUIRE(absl::IsUnknown(rig.splice_status));
}
