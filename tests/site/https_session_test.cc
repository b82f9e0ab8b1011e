// HttpsSession on loopback TCP, on the loop's manual time: one deadline covers the ClientHello
// and the whole TLS handshake (a peer that stalls anywhere in it is closed and audited), and
// the first request is due a bounded time after the handshake.
#include "site/https_session.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "net/tcp.h"
#include "tls/test_certs.h"

using namespace p2proxy;
using namespace p2proxy::site;

namespace {

constexpr const char* kHost = "vault.example.internal";

// Bytes collects what a raw client reads.
struct Bytes : net::StreamHandler {
  void OnData(base::ByteSpan data) override { text.append(reinterpret_cast<const char*>(data.data()), data.size()); }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status&) override { ended = true; }
  std::string text;
  bool ended = false;
};

struct Fixture {
  Fixture() {
    loop.UseManualTime();
    resource.name = "vault";
    resource.protocol = Protocol::kHttps;
    resource.target = *base::SocketAddress::Parse("127.0.0.1:9");
    resource.access.grant.users = {"alice"};
    resource.hostnames = {kHost};
    leaf = ca.Issue({kHost});
    auto cert = tls::ServerCertificate::FromPem(leaf.chain_pem, leaf.key_pem, tls::ServerTlsOptions{});
    REQUIRE(cert.ok());
    REQUIRE(https.certs.Put(kHost, *cert).ok());
    https.config = &resource;
    https.handshake_timeout = absl::Seconds(10);
    https.limits.first_request_timeout_ms = 10000;
    http::ReverseProxyOptions popts;
    popts.upstream = resource.target;
    https.proxy = std::make_unique<http::ReverseProxy>(
        loop, loop.clock(), popts,
        [](std::unique_ptr<net::Stream>, std::vector<uint8_t>, std::unique_ptr<net::Stream>, std::vector<uint8_t>) {});
    char tmpl[] = "/tmp/p2p-https-session-audit-XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    audit_path = tmpl;
    auto log = http::AuditLog::Open(loop, audit_path);
    REQUIRE(log.ok());
    audit = std::move(*log);
    auto l = net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                      [this](std::unique_ptr<net::TcpStream> conn) {
                                        PeerContext peer;
                                        peer.identity = http::Identity{"alice-key", "alice", {"dev"}};
                                        peer.address = "100.96.0.5";
                                        peer.port = 40000;
                                        session = std::make_unique<HttpsSession>(
                                            loop, https, *audit, HttpsSession::Mode::kHttps, std::move(conn), peer,
                                            [this](HttpsSession*) { done = true; });
                                        session->Start();
                                      });
    REQUIRE(l.ok());
    listener = std::move(*l);
  }
  ~Fixture() {
    session.reset();
    tls_client.reset();
    raw.reset();
    audit.reset();
    std::remove(audit_path.c_str());
  }

  // ConnectRaw opens a plain TCP client and waits until the session exists (its deadline runs).
  void ConnectRaw() {
    net::TcpStream::Connect(loop, listener->local_address(), [this](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      REQUIRE(s.ok());
      raw = std::move(*s);
      raw->SetHandler(&raw_bytes);
    });
    REQUIRE(loop.RunUntil([&] { return raw && session; }, absl::Seconds(10)));
  }

  std::string Audit() {
    audit->Flush();
    std::ifstream in(audit_path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  net::Loop loop;
  tls::testing::TestCa ca;
  tls::testing::TestLeaf leaf;
  SiteResource resource;
  HttpsResource https;
  std::string audit_path;
  std::unique_ptr<http::AuditLog> audit;
  std::unique_ptr<net::TcpListener> listener;
  std::unique_ptr<HttpsSession> session;
  bool done = false;
  std::unique_ptr<net::TcpStream> raw;
  Bytes raw_bytes;
  std::unique_ptr<tls::TlsStream> tls_client;
};

}  // namespace

TEST_CASE("HttpsSession: a peer that sends no ClientHello is closed at the handshake deadline and audited") {
  Fixture f;
  f.ConnectRaw();
  f.loop.AdvanceTime(absl::Milliseconds(9999));
  REQUIRE_FALSE(f.loop.RunUntil([&] { return f.done; }, absl::Milliseconds(20)));
  f.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(f.loop.RunUntil([&] { return f.done; }, absl::Seconds(10)));
  CHECK(f.https.counters.hello_timeouts == 1);
  CHECK(f.https.counters.handshake_timeouts == 0);
  const std::string audit = f.Audit();
  CHECK(audit.find("\"reason\":\"tls: no ClientHello in time\"") != std::string::npos);
  CHECK(audit.find("\"user\":\"alice\"") != std::string::npos);
}

TEST_CASE("HttpsSession: a peer that stalls after its ClientHello is closed at the same deadline and audited") {
  Fixture f;
  f.ConnectRaw();
  // A real BoringSSL client over memory BIOs makes the ClientHello; after it, nothing more.
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  SSL_set_connect_state(ssl.get());
  SSL_set_tlsext_host_name(ssl.get(), kHost);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rbio, wbio);
  REQUIRE(SSL_do_handshake(ssl.get()) == -1);
  const uint8_t* hello = nullptr;
  size_t hello_len = 0;
  REQUIRE(BIO_mem_contents(wbio, &hello, &hello_len));
  REQUIRE(hello_len > 0);
  f.loop.AdvanceTime(absl::Seconds(5));
  f.raw->Write(base::ByteSpan(hello, hello_len));
  // The server answered (ServerHello and its flight): the handshake is under way.
  REQUIRE(f.loop.RunUntil([&] { return f.raw_bytes.text.size() > 100; }, absl::Seconds(10)));
  CHECK_FALSE(f.done);
  // The deadline counts from the connection, not from the ClientHello.
  f.loop.AdvanceTime(absl::Seconds(5));
  REQUIRE(f.loop.RunUntil([&] { return f.done; }, absl::Seconds(10)));
  CHECK(f.https.counters.handshake_timeouts == 1);
  CHECK(f.https.counters.hello_timeouts == 0);
  const std::string audit = f.Audit();
  CHECK(audit.find("\"reason\":\"tls: handshake not finished in time\"") != std::string::npos);
  CHECK(audit.find(std::string("\"host\":\"") + kHost + "\"") != std::string::npos);
}

TEST_CASE("HttpsSession: after a finished handshake the first request is due within first_request_timeout") {
  Fixture f;
  net::TcpStream::Connect(f.loop, f.listener->local_address(), [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
    REQUIRE(s.ok());
    tls::ClientTlsOptions opts;
    opts.server_name = kHost;
    opts.ca_pem = f.ca.cert_pem();
    opts.alpn = {"http/1.1"};
    f.tls_client = tls::TlsStream::Client(f.loop, std::move(*s), opts);
  });
  REQUIRE(f.loop.RunUntil([&] { return f.tls_client != nullptr; }, absl::Seconds(10)));
  absl::Status handshake = absl::UnknownError("pending");
  f.tls_client->Handshake([&](const absl::Status& st) { handshake = st; });
  REQUIRE(f.loop.RunUntil([&] { return handshake.code() != absl::StatusCode::kUnknown; }, absl::Seconds(10)));
  REQUIRE(handshake.ok());
  f.tls_client->SetHandler(&f.raw_bytes);
  REQUIRE(f.loop.RunUntil([&] { return f.https.counters.handshakes == 1; }, absl::Seconds(10)));
  // Past the handshake deadline: it was met, so it no longer applies.
  f.loop.AdvanceTime(absl::Seconds(9));
  REQUIRE_FALSE(f.loop.RunUntil([&] { return f.done; }, absl::Milliseconds(20)));
  CHECK(f.https.counters.handshake_timeouts == 0);
  // No request: 408 once first_request_timeout has passed since the handshake.
  f.loop.AdvanceTime(absl::Seconds(1));
  REQUIRE(f.loop.RunUntil([&] { return f.raw_bytes.text.find(" 408 ") != std::string::npos; }, absl::Seconds(10)));
  // The connection lingers a bounded while for the client to read the 408, then ends.
  f.loop.AdvanceTime(absl::Seconds(10));
  REQUIRE(f.loop.RunUntil([&] { return f.done; }, absl::Seconds(10)));
  CHECK(f.https.counters.handshake_timeouts == 0);
  CHECK(f.https.counters.hello_timeouts == 0);
}
