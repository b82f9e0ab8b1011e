// conn_storm: a load and behaviour probe for end-to-end tests, on p2proxy's own net module.
//   conn_storm echo PORT                  serve: echo every connection back (kernel TCP)
//   conn_storm storm ADDR:PORT N BYTES    open N connections at once, send BYTES of a pattern
//                                         on each, expect them echoed; exit 0 if all matched
//   conn_storm flood PORT                 serve: write zeros to every connection until it closes
//   conn_storm stall ADDR:PORT SECONDS    connect, read nothing for SECONDS, then exit 0
// Prints one key=value summary line. Bounded: every mode has a time limit.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "base/process_limits.h"
#include "net/loop.h"
#include "net/tcp.h"

using namespace p2proxy;

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: conn_storm echo PORT | storm ADDR:PORT N BYTES | flood PORT | stall ADDR:PORT SECONDS\n");
  return 2;
}

uint8_t PatternByte(size_t conn, size_t i) { return static_cast<uint8_t>((conn * 131 + i * 7) & 0xff); }

struct EchoConn : net::StreamHandler {
  std::unique_ptr<net::TcpStream> s;
  bool done = false;
  void OnData(base::ByteSpan d) override { s->Write(d); }
  void OnEnd() override { s->Shutdown(); done = true; }
  void OnError(const absl::Status&) override { done = true; }
};

struct FloodConn : net::StreamHandler {
  std::unique_ptr<net::TcpStream> s;
  bool done = false;
  std::vector<uint8_t> chunk = std::vector<uint8_t>(64 * 1024, 0);
  void Pump() {
    while (!done && s->WriteQueueSize() < 256 * 1024) s->Write(chunk);
  }
  void OnData(base::ByteSpan) override {}
  void OnEnd() override { done = true; }
  void OnError(const absl::Status&) override { done = true; }
  void OnWriteDrained() override { Pump(); }
};

struct StormConn : net::StreamHandler {
  size_t id = 0, expect = 0, got = 0;
  bool ok = true, finished = false;
  std::unique_ptr<net::TcpStream> s;
  void OnData(base::ByteSpan d) override {
    for (size_t i = 0; i < d.size(); ++i) ok &= d[i] == PatternByte(id, got + i);
    got += d.size();
  }
  void OnEnd() override { finished = true; }
  void OnError(const absl::Status&) override { ok = false; finished = true; }
};

uint16_t Port(const char* s) {
  uint32_t p = 0;
  if (!absl::SimpleAtoi(s, &p) || p == 0 || p > 65535) {
    std::fprintf(stderr, "conn_storm: '%s' is not a port\n", s);
    std::exit(2);
  }
  return static_cast<uint16_t>(p);
}

}  // namespace

int main(int argc, char** argv) {
  // A thousand connections at once need more descriptors than the usual soft limit of 1024.
  p2proxy::base::RaiseOpenFileLimit();
  if (argc < 3) return Usage();
  const std::string mode = argv[1];
  net::Loop loop;
  if (mode == "echo" || mode == "flood") {
    std::vector<std::unique_ptr<EchoConn>> echoes;
    std::vector<std::unique_ptr<FloodConn>> floods;
    auto addr = base::SocketAddress::FromIp("0.0.0.0", Port(argv[2]));
    auto l = net::TcpListener::Listen(loop, *addr, [&](std::unique_ptr<net::TcpStream> s) {
      if (mode == "echo") {
        auto e = std::make_unique<EchoConn>();
        e->s = std::move(s);
        e->s->SetHandler(e.get());
        echoes.push_back(std::move(e));
      } else {
        auto f = std::make_unique<FloodConn>();
        f->s = std::move(s);
        f->s->SetHandler(f.get());
        f->Pump();
        floods.push_back(std::move(f));
      }
    }, 4096);
    if (!l.ok()) {
      std::fprintf(stderr, "conn_storm: %s\n", std::string(l.status().message()).c_str());
      return 1;
    }
    loop.RunUntil([] { return false; }, absl::Hours(1));  // the test kills it
    return 0;
  }
  if (mode == "storm" && argc == 5) {
    auto target = base::SocketAddress::Parse(argv[2]);
    size_t n = 0, bytes = 0;
    if (!target.ok() || !absl::SimpleAtoi(argv[3], &n) || !absl::SimpleAtoi(argv[4], &bytes)) return Usage();
    std::vector<std::unique_ptr<StormConn>> conns(n);
    size_t connected = 0, failed_connect = 0;
    for (size_t i = 0; i < n; ++i) {
      conns[i] = std::make_unique<StormConn>();
      conns[i]->id = i;
      conns[i]->expect = bytes;
      StormConn* c = conns[i].get();
      net::TcpStream::Connect(loop, *target, [&, c](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
        if (!s.ok()) {
          ++failed_connect;
          c->ok = false;
          c->finished = true;
          return;
        }
        ++connected;
        c->s = std::move(*s);
        c->s->SetHandler(c);
        std::vector<uint8_t> data(c->expect);
        for (size_t j = 0; j < data.size(); ++j) data[j] = PatternByte(c->id, j);
        c->s->WriteOwned(std::move(data));
        c->s->Shutdown();
      });
    }
    const absl::Time start = absl::Now();
    const bool all = loop.RunUntil([&] {
      for (auto& c : conns) if (!c->finished) return false;
      return true;
    }, absl::Seconds(120));
    size_t good = 0;
    for (auto& c : conns) good += c->ok && c->got == c->expect;
    std::printf("mode=storm conns=%zu connected=%zu connect_failed=%zu intact=%zu all_finished=%d seconds=%.2f\n",
                n, connected, failed_connect, good, all ? 1 : 0, absl::ToDoubleSeconds(absl::Now() - start));
    return good == n ? 0 : 1;
  }
  if (mode == "stall" && argc == 4) {
    auto target = base::SocketAddress::Parse(argv[2]);
    int secs = 0;
    if (!target.ok() || !absl::SimpleAtoi(argv[3], &secs)) return Usage();
    std::unique_ptr<net::TcpStream> conn;
    bool failed = false;
    net::TcpStream::Connect(loop, *target, [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      if (s.ok()) conn = std::move(*s);
      else failed = true;
    });
    loop.RunUntil([&] { return conn || failed; }, absl::Seconds(10));
    if (!conn) return 1;
    // Never set a handler: nothing is read, the window closes, the sender must hold back.
    loop.RunUntil([] { return false; }, absl::Seconds(secs));
    std::printf("mode=stall seconds=%d\n", secs);
    return 0;
  }
  return Usage();
}
