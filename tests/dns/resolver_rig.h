// resolver_rig.h: what the resolver tests share: query builders, a fake upstream, a resolver on
// loopback with a UDP client, and TCP clients (one on net::TcpStream, one on a plain socket
// that can pick its source address).
#ifndef P2PROXY_TESTS_DNS_RESOLVER_RIG_H_
#define P2PROXY_TESTS_DNS_RESOLVER_RIG_H_

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "base/clock.h"
#include "dns/resolver.h"
#include "net/handle.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "net/udp.h"

namespace p2proxy::dns::testing {

inline Name N(const char* text) { return *Name::Parse(text); }

inline std::vector<uint8_t> Query(uint16_t id, const char* name, uint16_t type, bool edns = false) {
  Message q;
  q.header.id = id;
  q.header.rd = true;
  q.questions.push_back(Question{N(name), type, kClassIn});
  if (edns) {
    Edns e;
    e.udp_payload_size = 4096;
    q.edns = e;
  }
  std::vector<uint8_t> out;
  REQUIRE(BuildMessage(q, 65535, &out));
  return out;
}

// FakeUpstream answers A queries with 192.0.2.1 (TTL 30), or with 100 addresses for names that
// start with "big", and records every question it is asked. While |silent| it answers nothing
// and keeps the queries; Release answers those.
struct FakeUpstream {
  explicit FakeUpstream(net::Loop& loop, bool silent_at_start = false) : silent(silent_at_start) {
    socket = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                   [this](absl::Span<const base::Datagram> batch) {
                                     for (const auto& d : batch) Answer(d.data, d.addr);
                                   });
  }
  void Answer(base::ByteSpan query, const base::SocketAddress& from) {
    Message q;
    REQUIRE(ParseMessage(query, &q) == ParseError::kOk);
    asked.push_back(q.questions.at(0).name.Key());
    if (silent) {
      held.emplace_back(std::move(q), from);
      return;
    }
    Reply(q, from);
  }
  void Reply(const Message& q, const base::SocketAddress& to) {
    Message r;
    r.header = q.header;
    r.header.qr = true;
    r.header.ra = true;
    r.questions = q.questions;
    const bool big = absl::StartsWith(q.questions[0].name.Key(), "big");
    for (int i = 0; i < (big ? 100 : 1); ++i) {
      r.answers.push_back(
          MakeA(q.questions[0].name, 30, base::IpAddress::V4(192, 0, 2, static_cast<uint8_t>(i + 1))));
    }
    std::vector<uint8_t> out;
    REQUIRE(BuildMessage(r, 65535, &out));
    socket->Send(to, out);
  }
  // Release stops being silent and answers the queries it kept.
  void Release() {
    silent = false;
    auto queries = std::move(held);
    held.clear();
    for (const auto& [q, from] : queries) Reply(q, from);
  }
  bool silent;
  std::unique_ptr<net::UdpSocket> socket;
  std::vector<std::string> asked;
  std::vector<std::pair<Message, base::SocketAddress>> held;
};

// Rig is a resolver on 127.0.0.1 with one private zone, a fake upstream and a UDP client.
struct Rig {
  struct Setup {
    bool silent_upstream = false;
    // manual_time puts the loop on manual time (net::Loop::UseManualTime) before the resolver
    // starts any timer: its TCP idle timers then fire only from loop.AdvanceTime.
    bool manual_time = false;
    std::function<void(Resolver::Options&)> tweak;  // adjusts the options before Create
  };
  explicit Rig(bool silent_upstream = false) : Rig(Setup{silent_upstream, false, nullptr}) {}
  explicit Rig(const Setup& setup) : upstream(loop, setup.silent_upstream) {
    if (setup.manual_time) loop.UseManualTime();
    ZoneTable zones;
    REQUIRE(zones.AddZone("example.internal").ok());
    REQUIRE(zones.AddRecord("vault.example.internal", base::IpAddress::V4(100, 96, 128, 20)).ok());
    REQUIRE(zones.AddReverse(*base::IpPrefix::Parse("100.96.128.0/18")).ok());
    Resolver::Options o;
    o.listen = *base::SocketAddress::Parse("127.0.0.1:0");
    o.upstreams = {upstream.socket->local_address()};
    o.upstream_timeout = absl::Milliseconds(200);
    if (setup.tweak) setup.tweak(o);
    // Port 0 picks a free UDP port and TCP then takes the same number, which another socket
    // on the machine may hold: try a few ports.
    for (int attempt = 0; attempt < 20 && resolver == nullptr; ++attempt) {
      absl::StatusOr<std::unique_ptr<Resolver>> r = Resolver::Create(loop, clock, zones, o);
      if (r.ok()) resolver = std::move(*r);
    }
    REQUIRE(resolver != nullptr);
    client = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                   [this](absl::Span<const base::Datagram> batch) {
                                     for (const auto& d : batch) replies.emplace_back(d.data.begin(), d.data.end());
                                   });
  }
  // Ask sends one query over UDP and waits (bounded) for one reply, parsed into |out|.
  bool Ask(const std::vector<uint8_t>& query, Message* out) {
    const size_t before = replies.size();
    client->Send(resolver->local_address(), query);
    if (!loop.RunUntil([&] { return replies.size() > before; }, absl::Seconds(10))) return false;
    last_wire = replies.back();
    return ParseMessage(last_wire, out) == ParseError::kOk;
  }
  net::Loop loop;
  base::FakeClock clock;
  FakeUpstream upstream;
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<net::UdpSocket> client;
  std::vector<std::vector<uint8_t>> replies;
  std::vector<uint8_t> last_wire;
};

inline std::string FirstA(const Message& m) {
  for (const auto& r : m.answers) {
    if (r.type == kTypeA && r.rdata.size() == 4) return base::IpAddress::FromBytes(r.rdata).ToString();
  }
  return "";
}

// Reader keeps what a TCP connection to the resolver sends back.
struct Reader : net::StreamHandler {
  void OnData(base::ByteSpan d) override { bytes.insert(bytes.end(), d.begin(), d.end()); }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status&) override { ended = true; }
  std::vector<uint8_t> bytes;
  bool ended = false;
};

// ConnectTcp opens a TCP connection to the rig's resolver, read by |reader|.
inline std::unique_ptr<net::TcpStream> ConnectTcp(Rig& rig, Reader& reader) {
  std::unique_ptr<net::TcpStream> tcp;
  net::TcpStream::Connect(rig.loop, rig.resolver->local_address(),
                          [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) { tcp = std::move(*s); });
  REQUIRE(rig.loop.RunUntil([&] { return tcp != nullptr; }, absl::Seconds(10)));
  tcp->SetHandler(&reader);
  return tcp;
}

// Frame appends |q| with TCP's two-byte length prefix (RFC 1035 §4.2.2).
inline void Frame(const std::vector<uint8_t>& q, std::vector<uint8_t>* out) {
  out->push_back(static_cast<uint8_t>(q.size() >> 8));
  out->push_back(static_cast<uint8_t>(q.size()));
  out->insert(out->end(), q.begin(), q.end());
}

// Unframe splits length-prefixed messages; a partial one at the end is left out.
inline std::vector<std::vector<uint8_t>> Unframe(const std::vector<uint8_t>& bytes) {
  std::vector<std::vector<uint8_t>> out;
  size_t off = 0;
  while (bytes.size() - off >= 2) {
    const size_t len = (size_t{bytes[off]} << 8) | bytes[off + 1];
    if (bytes.size() - off - 2 < len) break;
    out.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(off + 2),
                     bytes.begin() + static_cast<std::ptrdiff_t>(off + 2 + len));
    off += 2 + len;
  }
  return out;
}

// RawClient is a TCP client on a plain socket bound to |source_ip| before it connects, so a test
// chooses the address the resolver sees. A uv_poll reads what arrives into |bytes| and writes
// what Send could not hand to the kernel at once, so waiting on it with Loop::RunUntil wakes
// when data (or the end) comes. With |read| false it reads nothing until StartReading;
// |rcvbuf| (if not 0) sets SO_RCVBUF before the connect, which bounds the window it offers.
struct RawClient {
  RawClient(net::Loop& loop, const char* source_ip, const base::SocketAddress& to, bool read = true,
            int rcvbuf = 0)
      : reading(read) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf != 0) REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, source_ip, &src.sin_addr) == 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) == 0);
    // A loopback connect completes in the kernel's backlog, before the resolver accepts it.
    REQUIRE(connect(fd, to.sa(), to.sa_len()) == 0);
    REQUIRE(uv_poll_init_socket(loop.uv(), poll.get(), fd) == 0);
    poll.MarkInitialized();
    poll->data = this;
    UpdatePoll();
  }
  ~RawClient() {
    poll.Close();  // stops polling before the descriptor goes
    if (fd >= 0) close(fd);
  }
  void StartReading() {
    reading = true;
    UpdatePoll();
  }
  // Send queues |data| and writes what the kernel takes now; the rest goes as it drains.
  void Send(const std::vector<uint8_t>& data) {
    out.insert(out.end(), data.begin(), data.end());
    WriteAvailable();
  }
  size_t unsent() const { return out.size() - out_off; }

  void UpdatePoll() {
    const int events = (reading && !ended ? UV_READABLE : 0) | (unsent() > 0 && !ended ? UV_WRITABLE : 0);
    if (events == 0) {
      uv_poll_stop(poll.get());
      return;
    }
    uv_poll_start(poll.get(), events, [](uv_poll_t* h, int, int ev) {
      auto* self = static_cast<RawClient*>(h->data);
      if (self == nullptr) return;
      if (ev & UV_WRITABLE) self->WriteAvailable();
      if (ev & UV_READABLE) self->ReadAvailable();
    });
  }
  void WriteAvailable() {
    while (unsent() > 0) {
      const ssize_t n = send(fd, out.data() + out_off, unsent(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      REQUIRE(n > 0);
      out_off += static_cast<size_t>(n);
    }
    UpdatePoll();
  }
  void ReadAvailable() {
    uint8_t buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        bytes.insert(bytes.end(), buf, buf + n);
        continue;
      }
      if (n < 0 && (errno == EINTR)) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      ended = true;  // end of stream or reset
      UpdatePoll();
      return;
    }
  }
  int fd = -1;
  net::UvHandle<uv_poll_t> poll;
  bool reading;
  std::vector<uint8_t> out;
  size_t out_off = 0;
  std::vector<uint8_t> bytes;
  bool ended = false;
};

}  // namespace p2proxy::dns::testing

#endif  // P2PROXY_TESTS_DNS_RESOLVER_RIG_H_
