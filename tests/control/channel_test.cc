// The control channel's two ends over loopback TCP + TLS 1.3 with certificates made here: a
// frame round trip, enrollment without a certificate, refused certificates and pins, bad and
// out-of-order frames, liveness under manual time, the send-queue cap, the ALPN demux,
// handshake bounds, certificate rotation, the order rules of both roles and the backoff.
#include "control/channel.h"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "control/backoff.h"
#include "control/dialer.h"
#include "control/framing.h"
#include "control/listener.h"
#include "control/order.h"
#include "control/samples.h"
#include "net/tcp.h"
#include "tls/test_certs.h"
#include "tls/tls_stream.h"

using namespace p2proxy;
using namespace p2proxy::control;
using control::testing::SampleEnroll;
using control::testing::SampleEnrolled;
using control::testing::SampleEndpointReport;
using control::testing::SampleHello;
using control::testing::SampleSiteSnapshot;
using control::testing::SampleSnapshotAck;
using control::testing::SampleAuditAck;
using control::testing::SampleAuditBatch;
using tls::testing::TestLeaf;

namespace {

constexpr absl::Duration kLimit = absl::Seconds(20);

// Issuer is a CA issuing a server certificate and node certificates (EKU clientAuth, CN the
// node id).
struct Issuer {
  explicit Issuer(const std::string& cn)
      : key(tls::testing::NewP256Key()),
        cert(tls::testing::MakeCert(cn, key.get(), nullptr, nullptr, true, {}, 1)) {}
  std::string cert_pem() const { return tls::testing::CertPem(cert.get()); }
  TestLeaf ServerLeaf() {
    auto k = tls::testing::NewP256Key();
    auto leaf = tls::testing::MakeCert("ctl.example.internal", k.get(), cert.get(), key.get(), false,
                                       {"ctl.example.internal"}, ++serial);
    return TestLeaf{tls::testing::CertPem(leaf.get()), tls::testing::KeyPem(k.get())};
  }
  TestLeaf NodeLeaf(const std::string& node_id) {
    auto k = tls::testing::NewP256Key();
    bssl::UniquePtr<X509> leaf(X509_new());
    REQUIRE(X509_set_version(leaf.get(), X509_VERSION_3));
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(leaf.get()), 0x5e00 + ++serial));
    REQUIRE(X509_gmtime_adj(X509_getm_notBefore(leaf.get()), -3600));
    REQUIRE(X509_gmtime_adj(X509_getm_notAfter(leaf.get()), 86400));
    REQUIRE(X509_NAME_add_entry_by_txt(X509_get_subject_name(leaf.get()), "CN", MBSTRING_ASC,
                                       reinterpret_cast<const uint8_t*>(node_id.c_str()), -1, -1, 0));
    REQUIRE(X509_set_issuer_name(leaf.get(), X509_get_subject_name(cert.get())));
    REQUIRE(X509_set_pubkey(leaf.get(), k.get()));
    tls::testing::AddExtension(leaf.get(), cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    tls::testing::AddExtension(leaf.get(), cert.get(), NID_ext_key_usage, "clientAuth");
    REQUIRE(X509_sign(leaf.get(), key.get(), EVP_sha256()));
    return TestLeaf{tls::testing::CertPem(leaf.get()), tls::testing::KeyPem(k.get())};
  }
  bssl::UniquePtr<EVP_PKEY> key;
  bssl::UniquePtr<X509> cert;
  long serial = 1;
};

// LogCapture keeps every log line while it lives.
struct LogCapture {
  LogCapture() {
    base::SetLogSink([this](base::LogLevel, absl::string_view line) { lines.emplace_back(line); });
  }
  ~LogCapture() { base::SetLogSink(nullptr); }
  bool Has(const std::string& needle) const {
    for (const std::string& l : lines) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::vector<std::string> lines;
};

// Recorder is a Connection::Handler that keeps what it sees.
struct Recorder : Connection::Handler {
  void OnFrame(wire::Frame f) override { frames.push_back(std::move(f)); }
  void OnClosed(const absl::Status& s) override { closed = s; }
  std::vector<wire::Frame> frames;
  std::optional<absl::Status> closed;
};

// RawClient is a TLS client that speaks frames by hand, to send what a Connection refuses to.
struct RawClient : net::StreamHandler {
  void Dial(net::Loop& loop, const base::SocketAddress& to, tls::ClientTlsOptions o) {
    net::TcpStream::Connect(loop, to, [this, &loop, o](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      REQUIRE(s.ok());
      tls = tls::TlsStream::Client(loop, std::move(*s), o);
      tls->Handshake([this](const absl::Status& st) {
        hs = st;
        if (st.ok() && read) tls->SetHandler(this);
      });
    });
  }
  void Send(const wire::Frame& f) {
    auto bytes = EncodeFrame(f);
    REQUIRE(bytes.ok());
    tls->Write(*bytes);
  }
  void OnData(base::ByteSpan data) override {
    wire::Frame f;
    while (reader.Read(&data, &f) == FrameReader::Result::kFrame) {
      frames.push_back(f);
      if (f.has_error() && close_on_error) tls->Shutdown();  // as a Connection does: the sender of Error closes
    }
  }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status& s) override { error = s; }
  bool Gone() const { return ended || !error.ok(); }
  bool GotError(wire::ErrorCode code) const {
    for (const auto& f : frames) {
      if (f.has_error() && f.error().code() == code) return true;
    }
    return false;
  }

  std::unique_ptr<tls::TlsStream> tls;
  absl::Status hs = absl::UnknownError("pending");
  bool read = true;
  bool close_on_error = true;
  FrameReader reader;
  std::vector<wire::Frame> frames;
  bool ended = false;
  absl::Status error;
};

// Fixture is a control listener on 127.0.0.1:0 with a fresh PKI; accepted connections are
// started with a Recorder.
struct Fixture {
  struct Accepted {
    std::unique_ptr<Connection> conn;
    PeerInfo info;
    Recorder rec;
  };

  explicit Fixture(bool manual_time = false, ListenerOptions o = {}) {
    if (manual_time) loop.UseManualTime();
    o.address = *base::SocketAddress::Parse("127.0.0.1:0");
    const TestLeaf leaf = ca.ServerLeaf();
    creds = {leaf.chain_pem, leaf.key_pem, ca.cert_pem()};
    auto l = ControlListener::Listen(loop, o, creds, [this](std::unique_ptr<Connection> c, PeerInfo info) {
      auto a = std::make_unique<Accepted>();
      a->conn = std::move(c);
      a->info = std::move(info);
      if (start) a->conn->Start(&a->rec);
      accepted.push_back(std::move(a));
    });
    INFO(l.status().message());
    REQUIRE(l.ok());
    listener = std::move(*l);
  }
  std::string address() const { return listener->local_address().ToString(); }

  DialOptions NodeOptions(const std::string& node_id = "s-1") {
    DialOptions o;
    o.spki_sha256 = listener->spki_sha256();
    if (!node_id.empty()) {
      o.ca_pem = ca.cert_pem();
      const TestLeaf node = ca.NodeLeaf(node_id);
      o.client_chain_pem = node.chain_pem;
      o.client_key_pem = node.key_pem;
    }
    return o;
  }
  tls::ClientTlsOptions RawOptions(const std::string& node_id = "s-1") {
    const DialOptions d = NodeOptions(node_id);
    tls::ClientTlsOptions o;
    o.alpn = {std::string(kControlAlpn)};
    o.spki_sha256 = d.spki_sha256;
    o.client_chain_pem = d.client_chain_pem;
    o.client_key_pem = d.client_key_pem;
    o.min_version_tls13 = true;
    return o;
  }

  absl::StatusOr<std::unique_ptr<Connection>> Dial(DialOptions o, const std::string& to = "") {
    std::optional<absl::StatusOr<std::unique_ptr<Connection>>> result;
    auto attempt = DialControl(loop, to.empty() ? address() : to, std::move(o),
                               [&](absl::StatusOr<std::unique_ptr<Connection>> r) { result = std::move(r); });
    REQUIRE(loop.RunUntil([&] { return result.has_value(); }, kLimit));
    return std::move(*result);
  }
  // DialStarted dials, starts the node with |rec|, and waits for the server's side.
  std::unique_ptr<Connection> DialStarted(DialOptions o, Recorder* rec) {
    const size_t n = accepted.size();
    auto c = Dial(std::move(o));
    INFO(c.status().message());
    REQUIRE(c.ok());
    (*c)->Start(rec);
    REQUIRE(loop.RunUntil([&] { return accepted.size() > n; }, kLimit));
    return std::move(*c);
  }
  RawClient* Raw(tls::ClientTlsOptions o) {
    raws.push_back(std::make_unique<RawClient>());
    RawClient* r = raws.back().get();
    const size_t n = accepted.size();
    r->Dial(loop, listener->local_address(), std::move(o));
    REQUIRE(loop.RunUntil([&] { return !absl::IsUnknown(r->hs) && accepted.size() > n; }, kLimit));
    REQUIRE(r->hs.ok());
    return r;
  }

  net::Loop loop;
  Issuer ca{"control CA"};
  ControlCredentials creds;
  std::unique_ptr<ControlListener> listener;
  std::vector<std::unique_ptr<Accepted>> accepted;
  std::vector<std::unique_ptr<RawClient>> raws;
  bool start = true;
};

wire::Frame Ping(uint64_t id) {
  wire::Frame f;
  f.mutable_ping()->set_id(id);
  return f;
}

}  // namespace

TEST_CASE("control channel: frames go both ways over mutual TLS, and the server learns the node") {
  Fixture fx;
  Recorder node_rec;
  auto node = fx.DialStarted(fx.NodeOptions("s-1"), &node_rec);
  Fixture::Accepted& server = *fx.accepted.back();
  CHECK(server.info.has_client_cert);
  CHECK(server.info.node_id == "s-1");
  CHECK_FALSE(server.info.cert_serial_hex.empty());
  CHECK(server.info.remote.IpString() == "127.0.0.1");

  REQUIRE(node->Send(SampleHello()).ok());
  REQUIRE(fx.loop.RunUntil([&] { return !server.rec.frames.empty(); }, kLimit));
  CHECK(server.rec.frames[0].hello().node_id() == "s-1");
  CHECK(server.rec.frames[0].hello().last_snapshot_version() == SampleHello().hello().last_snapshot_version());

  REQUIRE(server.conn->Send(SampleSiteSnapshot()).ok());
  REQUIRE(fx.loop.RunUntil([&] { return !node_rec.frames.empty(); }, kLimit));
  CHECK(node_rec.frames[0].SerializeAsString() == SampleSiteSnapshot().SerializeAsString());

  REQUIRE(node->Send(SampleSnapshotAck()).ok());
  REQUIRE(server.conn->Send(SampleAuditAck()).ok());
  REQUIRE(fx.loop.RunUntil([&] { return server.rec.frames.size() == 2 && node_rec.frames.size() == 2; }, kLimit));
  CHECK(server.rec.frames[1].has_ack());
  CHECK(node_rec.frames[1].ack().audit_batch() == SampleAuditAck().ack().audit_batch());
  CHECK(node->counters().frames_out == 2);
  CHECK(node->counters().frames_in == 2);
  CHECK(fx.listener->channel_counters().frames_in == 2);
  CHECK(fx.listener->counters().control_connections == 1);

  // The sender's own rules: a node cannot send a Snapshot, nor Hello twice; nothing is sent.
  CHECK(node->Send(SampleSiteSnapshot()).message().find("snapshot: only the server sends it") != std::string::npos);
  CHECK(node->Send(SampleHello()).message().find("hello: sent twice") != std::string::npos);
  CHECK(node->open());

  // Close: an Error reaches the peer, which closes too; both see OnClosed once.
  node->Close(wire::ERROR_CODE_UNAVAILABLE, "shutting down");
  REQUIRE(fx.loop.RunUntil([&] { return node_rec.closed && server.rec.closed; }, kLimit));
  REQUIRE(server.rec.frames.size() == 3);
  CHECK(server.rec.frames[2].error().code() == wire::ERROR_CODE_UNAVAILABLE);
  CHECK(server.conn->close_reason() == CloseReason::kPeerError);
  CHECK(node->close_reason() == CloseReason::kLocal);
  CHECK(node->Send(Ping(1)).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("control channel: a node without a certificate may Enroll, but not say Hello") {
  LogCapture logs;
  Fixture fx;
  Recorder node_rec;
  auto node = fx.DialStarted(fx.NodeOptions(""), &node_rec);
  Fixture::Accepted& server = *fx.accepted.back();
  CHECK_FALSE(server.info.has_client_cert);
  CHECK(server.info.node_id.empty());
  // The node's own side refuses Hello without a certificate.
  CHECK(node->Send(SampleHello()).message().find("hello: needs a node certificate") != std::string::npos);
  REQUIRE(node->Send(SampleEnroll()).ok());
  REQUIRE(fx.loop.RunUntil([&] { return !server.rec.frames.empty(); }, kLimit));
  CHECK(server.rec.frames[0].has_enroll());
  CHECK(server.conn->order().enrollment());
  REQUIRE(server.conn->Send(SampleEnrolled()).ok());
  CHECK_FALSE(server.conn->Send(SampleEnrolled()).ok());  // once
  REQUIRE(fx.loop.RunUntil([&] { return !node_rec.frames.empty(); }, kLimit));
  CHECK(node_rec.frames[0].enrolled().node_id() == "s-1");
  CHECK_FALSE(node->Send(SampleEnroll()).ok());  // Enroll is the only frame

  // A hand-made client without a certificate that says Hello is refused by the server.
  RawClient* raw = fx.Raw(fx.RawOptions(""));
  raw->Send(SampleHello());
  Fixture::Accepted& refused = *fx.accepted.back();
  REQUIRE(fx.loop.RunUntil([&] { return refused.rec.closed && raw->Gone(); }, kLimit));
  CHECK(refused.conn->close_reason() == CloseReason::kOutOfOrder);
  CHECK(raw->GotError(wire::ERROR_CODE_BAD_FRAME));
  CHECK(refused.rec.frames.empty());
  CHECK(logs.Has("control: peer " + refused.info.remote.ToString() +
                 ": frame 1: hello: needs a node certificate (enroll first)"));
}

TEST_CASE("control channel: a node certificate from another CA fails the handshake") {
  Fixture fx;
  Issuer other("another CA");
  DialOptions o = fx.NodeOptions("s-1");
  const TestLeaf foreign = other.NodeLeaf("s-1");
  o.client_chain_pem = foreign.chain_pem;
  o.client_key_pem = foreign.key_pem;
  auto c = fx.Dial(o);
  // TLS 1.3: the client may finish before the server refuses; then the connection dies.
  Recorder rec;
  if (c.ok()) {
    (*c)->Start(&rec);
    REQUIRE(fx.loop.RunUntil([&] { return rec.closed.has_value(); }, kLimit));
    CHECK((*c)->close_reason() == CloseReason::kStreamError);
  }
  REQUIRE(fx.loop.RunUntil([&] { return fx.listener->counters().handshake_failures == 1; }, kLimit));
  CHECK(fx.accepted.empty());
  CHECK(rec.frames.empty());
}

TEST_CASE("control channel: the dialer names what failed: pin, connect, address, pin length") {
  Fixture fx;
  DialOptions o = fx.NodeOptions("s-1");
  o.spki_sha256[0] ^= 1;
  auto c = fx.Dial(o);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message() == "control: dial " + fx.address() +
                                    ": TLS: tls: handshake: server key does not match the pinned SHA-256 (spki_sha256)");

  // A port nobody listens on: bind one, note it, close it.
  std::string closed_port;
  {
    auto l = net::TcpListener::Listen(fx.loop, *base::SocketAddress::Parse("127.0.0.1:0"), [](auto) {});
    REQUIRE(l.ok());
    closed_port = (*l)->local_address().ToString();
  }
  fx.loop.RunOnce(false);
  c = fx.Dial(fx.NodeOptions("s-1"), closed_port);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message() == "control: dial " + closed_port + ": tcp: connect: connection refused");

  c = fx.Dial(fx.NodeOptions("s-1"), "127.0.0.1");
  CHECK(c.status().message() == "control: dial 127.0.0.1: control: address '127.0.0.1': expected host:port (IPv6 in brackets)");
  DialOptions no_pin = fx.NodeOptions("s-1");
  no_pin.spki_sha256.clear();
  c = fx.Dial(no_pin);
  CHECK(c.status().message() == "control: dial " + fx.address() + ": spki_sha256: 0 bytes; the server's key pin is 32");

  // A name goes through the resolver ("localhost" is in /etc/hosts).
  c = fx.Dial(fx.NodeOptions("s-1"), "localhost:" + std::to_string(fx.listener->local_address().port()));
  INFO(c.status().message());
  CHECK(c.ok());
  // A server_name is checked against the certificate when given.
  DialOptions named = fx.NodeOptions("s-1");
  named.server_name = "ctl.example.internal";
  CHECK(fx.Dial(named).ok());
  named.server_name = "localhost";
  c = fx.Dial(named);
  CHECK(c.status().message().find("Hostname mismatch") != std::string::npos);
  // Ends with the server's side of that failed handshake still pending: tearing down must
  // not run its callback on a dead listener.
}

TEST_CASE("control channel: oversized and garbage frames close the connection with the reason logged") {
  LogCapture logs;
  Fixture fx;
  struct Case {
    std::vector<uint8_t> bytes;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {{0x00, 0x20, 0x00, 0x00, 1, 2, 3}, "frame 1: length 2097152 is above the cap of 1048576 bytes"},
      {{0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff}, "frame 1: 5 bytes do not parse as a Frame"},
      {{0x00, 0x00, 0x00, 0x00}, "frame 1: length 0"},
  };
  for (const Case& c : cases) {
    INFO(c.reason);
    RawClient* raw = fx.Raw(fx.RawOptions("s-1"));
    Fixture::Accepted& server = *fx.accepted.back();
    raw->tls->Write(c.bytes);
    REQUIRE(fx.loop.RunUntil([&] { return server.rec.closed && raw->Gone(); }, kLimit));
    CHECK(server.conn->close_reason() == CloseReason::kBadFrame);
    CHECK(raw->GotError(wire::ERROR_CODE_BAD_FRAME));
    CHECK(server.rec.closed->message().find(c.reason) != std::string::npos);
    CHECK(logs.Has("control: peer " + server.info.remote.ToString() + ": " + c.reason));
  }
  // A frame that parses but breaks a rule of control.proto (ValidateFrame).
  RawClient* raw = fx.Raw(fx.RawOptions("s-1"));
  Fixture::Accepted& server = *fx.accepted.back();
  wire::Frame bad = SampleHello();
  bad.mutable_hello()->set_node_id("bad id!");
  raw->Send(bad);
  REQUIRE(fx.loop.RunUntil([&] { return server.rec.closed.has_value(); }, kLimit));
  CHECK(server.conn->close_reason() == CloseReason::kBadFrame);
  CHECK(server.rec.closed->message().find("frame 1: hello.node_id") != std::string::npos);
  CHECK(fx.listener->channel_counters().closes_for(CloseReason::kBadFrame) == 4);
  CHECK(server.rec.frames.empty());
}

TEST_CASE("control channel: out-of-order frames from a node close the connection") {
  LogCapture logs;
  Fixture fx;
  struct Case {
    std::vector<wire::Frame> frames;
    std::string reason;
  };
  wire::Frame other_id = SampleHello();
  other_id.mutable_hello()->set_node_id("s-2");
  const std::vector<Case> cases = {
      {{SampleSiteSnapshot()}, "frame 1: snapshot: only the server sends it"},
      {{SampleHello(), SampleHello()}, "frame 2: hello: sent twice"},
      {{other_id}, "frame 1: hello.node_id: 's-2' is not the certificate's 's-1'"},
      {{SampleEndpointReport()}, "frame 1: endpoint_report: before hello"},
      {{SampleEnroll()}, "frame 1: enroll: not on a connection with a node certificate"},
      {{SampleHello(), SampleAuditAck()}, "frame 2: ack.audit_batch: only the server sends it"},
  };
  for (const Case& c : cases) {
    INFO(c.reason);
    RawClient* raw = fx.Raw(fx.RawOptions("s-1"));
    Fixture::Accepted& server = *fx.accepted.back();
    for (const auto& f : c.frames) raw->Send(f);
    REQUIRE(fx.loop.RunUntil([&] { return server.rec.closed && raw->Gone(); }, kLimit));
    CHECK(server.conn->close_reason() == CloseReason::kOutOfOrder);
    CHECK(raw->GotError(wire::ERROR_CODE_BAD_FRAME));
    CHECK(server.rec.frames.size() == c.frames.size() - 1);  // those before the bad one
    CHECK(logs.Has(c.reason));
  }
}

TEST_CASE("control channel: Ping/Pong keeps a quiet connection up, and a silent peer is closed after 3 intervals") {
  Fixture fx(/*manual_time=*/true);
  Recorder node_rec;
  auto node = fx.DialStarted(fx.NodeOptions("s-1"), &node_rec);
  Fixture::Accepted& server = *fx.accepted.back();
  // Ten minutes of silence but for the pings.
  for (int i = 0; i < 40; ++i) {
    fx.loop.AdvanceTime(absl::Seconds(15));
    const uint64_t node_in = node->counters().frames_in, server_in = server.conn->counters().frames_in;
    REQUIRE(fx.loop.RunUntil([&] {
      return node->counters().frames_in > node_in && server.conn->counters().frames_in > server_in;
    }, kLimit));
  }
  CHECK(node->open());
  CHECK(server.conn->open());
  CHECK(node->counters().pongs_sent > 0);
  CHECK(server.conn->counters().pongs_sent > 0);
  CHECK(node_rec.frames.empty());  // Ping and Pong are not the handler's business

  // A peer that says Hello and then nothing, not even Pong.
  RawClient* raw = fx.Raw(fx.RawOptions("s-1"));
  Fixture::Accepted& quiet = *fx.accepted.back();
  raw->Send(SampleHello());
  REQUIRE(fx.loop.RunUntil([&] { return quiet.rec.frames.size() == 1; }, kLimit));
  raw->read = false;
  raw->tls->SetHandler(nullptr);
  fx.loop.AdvanceTime(absl::Seconds(44));
  fx.loop.RunOnce(false);
  CHECK(quiet.conn->open());
  CHECK(quiet.conn->counters().pings_sent == 2);  // at 15 s and 30 s
  fx.loop.AdvanceTime(absl::Seconds(1));
  REQUIRE(fx.loop.RunUntil([&] { return quiet.rec.closed.has_value(); }, kLimit));
  CHECK(quiet.conn->close_reason() == CloseReason::kIdleTimeout);
  CHECK(quiet.rec.closed->message().find("nothing received for 45s") != std::string::npos);
  CHECK(node->open());  // the healthy one is untouched
}

TEST_CASE("control channel: Close sends Error and waits for the peer's close at most close_timeout") {
  Fixture fx(/*manual_time=*/true);
  RawClient* raw = fx.Raw(fx.RawOptions("s-1"));
  raw->close_on_error = false;  // reads the Error but never closes
  Fixture::Accepted& server = *fx.accepted.back();
  server.conn->Close(wire::ERROR_CODE_UNAVAILABLE, "draining");
  CHECK_FALSE(server.conn->open());
  REQUIRE(fx.loop.RunUntil([&] { return raw->GotError(wire::ERROR_CODE_UNAVAILABLE) && raw->ended; }, kLimit));
  CHECK(raw->frames.back().error().message() == "draining");
  fx.loop.RunOnce(false);
  CHECK_FALSE(server.rec.closed.has_value());  // still waiting for the peer
  fx.loop.AdvanceTime(kDefaultCloseTimeout);
  REQUIRE(fx.loop.RunUntil([&] { return server.rec.closed.has_value(); }, kLimit));
  CHECK(server.conn->close_reason() == CloseReason::kLocal);
  CHECK(server.rec.closed->message().find("closed here: ERROR_CODE_UNAVAILABLE: draining") != std::string::npos);
  CHECK(server.conn->Send(Ping(1)).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("control channel: a peer that never reads is cut off at the send-queue cap") {
  LogCapture logs;
  ListenerOptions lo;
  lo.connection.max_send_queue = 256 * 1024;
  Fixture fx(false, lo);
  tls::ClientTlsOptions o = fx.RawOptions("s-1");
  fx.raws.push_back(std::make_unique<RawClient>());
  RawClient* raw = fx.raws.back().get();
  raw->read = false;  // never reads
  raw->Dial(fx.loop, fx.listener->local_address(), o);
  REQUIRE(fx.loop.RunUntil([&] { return !fx.accepted.empty(); }, kLimit));
  Connection& conn = *fx.accepted.back()->conn;
  // Each turn queues less than the cap; only the peer not reading makes it pile up.
  absl::Status st;
  uint64_t id = 0;
  for (int turn = 0; turn < 10000 && st.ok(); ++turn) {
    for (int i = 0; i < 1000 && st.ok(); ++i) st = conn.Send(Ping(++id));
    fx.loop.RunOnce(false);
  }
  INFO(st.message());
  CHECK(absl::IsResourceExhausted(st));
  CHECK(conn.close_reason() == CloseReason::kSendQueueFull);
  CHECK(conn.counters().bytes_out > lo.connection.max_send_queue);
  CHECK(logs.Has("more than 262144 bytes unsent (the peer does not read)"));
  REQUIRE(fx.loop.RunUntil([&] { return fx.accepted.back()->rec.closed.has_value(); }, kLimit));
}

TEST_CASE("control channel: other ALPNs go to their hook with the peeked bytes, and unknown ones are closed") {
  Fixture fx;
  CHECK_FALSE(fx.listener->RegisterAlpn(std::string(kControlAlpn), nullptr).ok());
  // The hook runs its own TLS server on the raw stream, fed the peeked ClientHello.
  Issuer wg_ca("wg CA");
  const TestLeaf wg_leaf = wg_ca.ServerLeaf();
  tls::ServerTlsOptions wg_options;
  wg_options.alpn = {"p2proxy-wg/1"};
  auto wg_cert = tls::ServerCertificate::FromPem(wg_leaf.chain_pem, wg_leaf.key_pem, wg_options);
  REQUIRE(wg_cert.ok());
  std::unique_ptr<tls::TlsStream> hooked;
  absl::Status hooked_hs = absl::UnknownError("pending");
  size_t peeked_len = 0;
  REQUIRE(fx.listener->RegisterAlpn("p2proxy-wg/1", [&](std::unique_ptr<net::TcpStream> tcp, std::vector<uint8_t> peeked,
                                                        const tls::ClientHelloInfo& hello) {
    CHECK(hello.alpn.front() == "p2proxy-wg/1");
    peeked_len = peeked.size();
    tcp->ResumeReading();  // the hook's part of the contract; TLS sets the handler
    hooked = tls::TlsStream::Server(fx.loop, std::move(tcp), *wg_cert, std::move(peeked));
    hooked->Handshake([&](const absl::Status& s) { hooked_hs = s; });
  }).ok());
  CHECK(fx.listener->RegisterAlpn("p2proxy-wg/1", [](auto, auto, const auto&) {}).code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK_FALSE(fx.listener->RegisterAlpn("x/1", nullptr).ok());

  RawClient wg;
  tls::ClientTlsOptions o;
  o.alpn = {"p2proxy-wg/1"};
  o.spki_sha256 = (*wg_cert)->spki_sha256();
  wg.Dial(fx.loop, fx.listener->local_address(), o);
  REQUIRE(fx.loop.RunUntil([&] { return !absl::IsUnknown(wg.hs) && !absl::IsUnknown(hooked_hs); }, kLimit));
  CHECK(wg.hs.ok());
  CHECK(hooked_hs.ok());
  CHECK(wg.tls->alpn() == "p2proxy-wg/1");
  CHECK(peeked_len > 0);
  CHECK(fx.listener->counters().to_hooks == 1);

  RawClient unknown;
  o.alpn = {"h2", "http/1.1"};
  unknown.Dial(fx.loop, fx.listener->local_address(), o);
  REQUIRE(fx.loop.RunUntil([&] { return !absl::IsUnknown(unknown.hs); }, kLimit));
  INFO(unknown.hs.message());
  CHECK(unknown.hs.message() == "tls: handshake: TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
  CHECK(fx.listener->counters().no_protocol == 1);
  CHECK(fx.accepted.empty());
}

TEST_CASE("control channel: handshakes are bounded in time and number, and non-TLS is dropped") {
  ListenerOptions lo;
  lo.max_pending = 1;
  Fixture fx(/*manual_time=*/true, lo);
  std::unique_ptr<net::TcpStream> first, second;
  net::TcpStream::Connect(fx.loop, fx.listener->local_address(), [&](auto s) { first = *std::move(s); });
  REQUIRE(fx.loop.RunUntil([&] { return first && fx.listener->pending() == 1; }, kLimit));
  // The listener aborts the second at once: its connect may succeed or see the reset.
  bool second_done = false;
  net::TcpStream::Connect(fx.loop, fx.listener->local_address(), [&](auto s) {
    second_done = true;
    if (s.ok()) second = *std::move(s);
  });
  REQUIRE(fx.loop.RunUntil([&] { return second_done && fx.listener->counters().refused_busy == 1; }, kLimit));
  CHECK(fx.listener->pending() == 1);
  fx.loop.AdvanceTime(absl::Seconds(9));
  CHECK(fx.listener->pending() == 1);
  fx.loop.AdvanceTime(absl::Seconds(1));
  CHECK(fx.listener->pending() == 0);
  CHECK(fx.listener->counters().handshake_timeouts == 1);

  std::unique_ptr<net::TcpStream> http;
  net::TcpStream::Connect(fx.loop, fx.listener->local_address(), [&](auto s) { http = *std::move(s); });
  REQUIRE(fx.loop.RunUntil([&] { return http != nullptr; }, kLimit));
  const std::string get = "GET / HTTP/1.1\r\n\r\n";
  http->Write(base::ByteSpan(reinterpret_cast<const uint8_t*>(get.data()), get.size()));
  REQUIRE(fx.loop.RunUntil([&] { return fx.listener->counters().not_tls == 1; }, kLimit));
  CHECK(fx.listener->pending() == 0);
}

TEST_CASE("control channel: rotated credentials apply to new connections, and old ones stay up") {
  Fixture fx;
  Recorder old_rec;
  const DialOptions old_options = fx.NodeOptions("s-1");
  auto old_conn = fx.DialStarted(old_options, &old_rec);
  const std::vector<uint8_t> old_pin = fx.listener->spki_sha256();
  const TestLeaf renewed = fx.ca.ServerLeaf();  // a new key
  CHECK_FALSE(fx.listener->SetCredentials({renewed.chain_pem, "not a key", fx.ca.cert_pem()}).ok());
  CHECK(fx.listener->spki_sha256() == old_pin);
  REQUIRE(fx.listener->SetCredentials({renewed.chain_pem, renewed.key_pem, fx.ca.cert_pem()}).ok());
  CHECK(fx.listener->spki_sha256() != old_pin);
  auto c = fx.Dial(old_options);
  CHECK(c.status().message().find("does not match the pinned") != std::string::npos);
  Recorder new_rec;
  auto fresh = fx.DialStarted(fx.NodeOptions("s-1"), &new_rec);
  CHECK(fresh->open());
  REQUIRE(old_conn->Send(SampleHello()).ok());
  REQUIRE(fx.loop.RunUntil([&] { return !fx.accepted.front()->rec.frames.empty(); }, kLimit));
  CHECK(old_conn->open());
}

TEST_CASE("control order: each side's frames, in order, for both roles") {
  // Node side: what it may receive from the server.
  FrameOrder node(Role::kNode, /*node_has_certificate=*/true);
  CHECK(node.OnReceive(SampleSiteSnapshot()).message() == "snapshot: before hello");
  CHECK(node.OnReceive(SampleEnrolled()).message() == "enrolled: without enroll");
  CHECK(node.OnReceive(SampleHello()).message() == "hello: only a node sends it");
  CHECK(node.OnReceive(Ping(1)).ok());
  CHECK(node.OnSend(SampleEnroll()).message().find("not on a connection with a node certificate") != std::string::npos);
  REQUIRE(node.OnSend(SampleHello()).ok());
  CHECK(node.OnReceive(SampleSiteSnapshot()).ok());
  CHECK(node.OnReceive(SampleAuditAck()).ok());
  CHECK(node.OnReceive(SampleSnapshotAck()).message() == "ack.snapshot_version: only a node sends it");
  CHECK(node.OnReceive(SampleAuditBatch()).message() == "audit_batch: only a node sends it");
  CHECK(node.OnSend(SampleAuditBatch()).ok());
  CHECK(node.OnSend(SampleSiteSnapshot()).message() == "snapshot: only the server sends it");

  FrameOrder enrolling(Role::kNode, false);
  CHECK(enrolling.OnSend(SampleHello()).message() == "hello: needs a node certificate (enroll first)");
  REQUIRE(enrolling.OnSend(SampleEnroll()).ok());
  CHECK(enrolling.OnReceive(SampleSiteSnapshot()).message() == "snapshot: before hello");
  CHECK(enrolling.OnReceive(SampleEnrolled()).ok());
  CHECK(enrolling.OnReceive(SampleEnrolled()).message() == "enrolled: sent twice");
  CHECK(enrolling.OnSend(SampleEndpointReport()).message().find("enroll is the only frame") != std::string::npos);

  // Server side.
  FrameOrder server(Role::kServer, true, "s-1");
  CHECK(server.OnSend(SampleSiteSnapshot()).message() == "snapshot: before hello");
  CHECK(server.OnReceive(SampleSnapshotAck()).message() == "ack: before hello");
  REQUIRE(server.OnReceive(SampleHello()).ok());
  CHECK(server.session());
  CHECK(server.OnSend(SampleSiteSnapshot()).ok());
  CHECK(server.OnReceive(SampleSnapshotAck()).ok());
  CHECK(server.OnReceive(SampleEnroll()).message().find("not on a connection with a node certificate") != std::string::npos);
}

TEST_CASE("control backoff: exponential ceiling with full jitter, capped, reset after a long session") {
  std::vector<double> draws = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.999999};
  size_t i = 0;
  Backoff b(BackoffOptions{}, [&] { return draws[i++ % draws.size()]; });
  std::vector<absl::Duration> got;
  for (int n = 0; n < 10; ++n) got.push_back(b.Next());
  const std::vector<absl::Duration> want = {
      absl::Milliseconds(250), absl::Milliseconds(500), absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
      absl::Seconds(8),        absl::Seconds(15),       absl::Seconds(15), absl::ZeroDuration(),
      absl::Seconds(30) * 0.999999};
  CHECK(got == want);
  CHECK(b.Ceiling() == absl::Seconds(30));
  b.SessionEnded(absl::Seconds(5));  // a short session: keep backing off
  CHECK(b.Ceiling() == absl::Seconds(30));
  b.SessionEnded(absl::Seconds(60));
  CHECK(b.Ceiling() == absl::Milliseconds(500));
  CHECK(b.attempts() == 0);
  // The default random source stays within the ceiling.
  Backoff real;
  for (int n = 0; n < 100; ++n) {
    const absl::Duration ceiling = real.Ceiling();
    const absl::Duration d = real.Next();
    CHECK(d >= absl::ZeroDuration());
    CHECK(d <= ceiling);
  }
}
