// ClientHelloPeek against real ClientHellos (BoringSSL's own client, and curl and openssl
// s_client captures committed as fuzz seeds), reassembled across records and byte by byte, and
// against malformed variants of a real hello.
#include "tls/client_hello.h"

#include <catch2/catch.hpp>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

using namespace p2proxy;
using p2proxy::tls::ClientHelloPeek;
using Result = p2proxy::tls::ClientHelloPeek::Result;
using Bytes = std::vector<uint8_t>;

namespace {

struct ClientOptions {
  std::string sni;
  std::vector<std::string> alpn;
  uint16_t max_version = TLS1_3_VERSION;
  bool grease = false;
};

// BoringClient is a BoringSSL client writing into a memory BIO: its first flight is a real
// ClientHello, and it can read the server's answer (our alert) back.
struct BoringClient {
  bssl::UniquePtr<SSL_CTX> ctx{SSL_CTX_new(TLS_method())};
  bssl::UniquePtr<SSL> ssl;
  BIO* rbio = nullptr;  // owned by ssl
  BIO* wbio = nullptr;

  explicit BoringClient(const ClientOptions& o) {
    REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), o.max_version));
    SSL_CTX_set_grease_enabled(ctx.get(), o.grease ? 1 : 0);
    ssl.reset(SSL_new(ctx.get()));
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), rbio, wbio);
    SSL_set_connect_state(ssl.get());
    if (!o.sni.empty()) REQUIRE(SSL_set_tlsext_host_name(ssl.get(), o.sni.c_str()));
    if (!o.alpn.empty()) {
      Bytes wire;
      for (const auto& p : o.alpn) {
        wire.push_back(static_cast<uint8_t>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
      }
      REQUIRE(SSL_set_alpn_protos(ssl.get(), wire.data(), static_cast<unsigned>(wire.size())) == 0);
    }
  }

  Bytes Hello() {
    REQUIRE(SSL_do_handshake(ssl.get()) == -1);
    REQUIRE(SSL_get_error(ssl.get(), -1) == SSL_ERROR_WANT_READ);
    const uint8_t* data;
    size_t len;
    REQUIRE(BIO_mem_contents(wbio, &data, &len));
    return Bytes(data, data + len);
  }
};

Bytes RealHello(const ClientOptions& o) {
  BoringClient c(o);
  return c.Hello();
}

// Rerecord re-splits the handshake bytes of |wire| into records of |fragment| bytes each.
Bytes Rerecord(const Bytes& wire, size_t fragment) {
  Bytes handshake;
  CBS in;
  CBS_init(&in, wire.data(), wire.size());
  while (CBS_len(&in) > 0) {
    uint8_t type;
    uint16_t version;
    CBS body;
    REQUIRE(CBS_get_u8(&in, &type));
    REQUIRE(CBS_get_u16(&in, &version));
    REQUIRE(CBS_get_u16_length_prefixed(&in, &body));
    handshake.insert(handshake.end(), CBS_data(&body), CBS_data(&body) + CBS_len(&body));
  }
  Bytes out;
  for (size_t off = 0; off < handshake.size(); off += fragment) {
    const size_t n = std::min(fragment, handshake.size() - off);
    out.insert(out.end(), {22, 3, 1, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    out.insert(out.end(), handshake.begin() + static_cast<long>(off), handshake.begin() + static_cast<long>(off + n));
  }
  return out;
}

// Hello is a ClientHello taken apart, so a test can change one field and build it again.
struct Hello {
  uint16_t legacy_version = 0;
  Bytes random, session_id, suites, compression;
  bool has_extensions = false;
  std::vector<std::pair<uint16_t, Bytes>> extensions;
  Bytes after_extensions;  // bytes after the extensions block, inside the message
  Bytes after_message;     // bytes after the message, inside its record

  static Hello Parse(const Bytes& wire) {
    CBS in, body, v;
    CBS_init(&in, wire.data(), wire.size());
    REQUIRE(CBS_skip(&in, 5));
    uint8_t type;
    REQUIRE(CBS_get_u8(&in, &type));
    REQUIRE(CBS_get_u24_length_prefixed(&in, &body));
    REQUIRE(CBS_len(&in) == 0);
    Hello h;
    REQUIRE(CBS_get_u16(&body, &h.legacy_version));
    auto take = [](CBS* c) { return Bytes(CBS_data(c), CBS_data(c) + CBS_len(c)); };
    REQUIRE(CBS_get_bytes(&body, &v, 32));
    h.random = take(&v);
    REQUIRE(CBS_get_u8_length_prefixed(&body, &v));
    h.session_id = take(&v);
    REQUIRE(CBS_get_u16_length_prefixed(&body, &v));
    h.suites = take(&v);
    REQUIRE(CBS_get_u8_length_prefixed(&body, &v));
    h.compression = take(&v);
    CBS exts;
    REQUIRE(CBS_get_u16_length_prefixed(&body, &exts));
    h.has_extensions = true;
    while (CBS_len(&exts) > 0) {
      uint16_t t;
      REQUIRE(CBS_get_u16(&exts, &t));
      REQUIRE(CBS_get_u16_length_prefixed(&exts, &v));
      h.extensions.emplace_back(t, take(&v));
    }
    return h;
  }

  Bytes* Find(uint16_t type) {
    for (auto& [t, data] : extensions) {
      if (t == type) return &data;
    }
    return nullptr;
  }
  void Remove(uint16_t type) {
    std::erase_if(extensions, [type](const auto& e) { return e.first == type; });
  }

  Bytes Build() const {
    bssl::ScopedCBB cbb;
    CBB msg, child, exts, ext;
    REQUIRE(CBB_init(cbb.get(), 512));
    REQUIRE(CBB_add_u8(cbb.get(), 1));
    REQUIRE(CBB_add_u24_length_prefixed(cbb.get(), &msg));
    REQUIRE(CBB_add_u16(&msg, legacy_version));
    REQUIRE(CBB_add_bytes(&msg, random.data(), random.size()));
    REQUIRE(CBB_add_u8_length_prefixed(&msg, &child));
    REQUIRE(CBB_add_bytes(&child, session_id.data(), session_id.size()));
    REQUIRE(CBB_add_u16_length_prefixed(&msg, &child));
    REQUIRE(CBB_add_bytes(&child, suites.data(), suites.size()));
    REQUIRE(CBB_add_u8_length_prefixed(&msg, &child));
    REQUIRE(CBB_add_bytes(&child, compression.data(), compression.size()));
    if (has_extensions) {
      REQUIRE(CBB_add_u16_length_prefixed(&msg, &exts));
      for (const auto& [t, data] : extensions) {
        REQUIRE(CBB_add_u16(&exts, t));
        REQUIRE(CBB_add_u16_length_prefixed(&exts, &ext));
        REQUIRE(CBB_add_bytes(&ext, data.data(), data.size()));
      }
    }
    REQUIRE(CBB_add_bytes(&msg, after_extensions.data(), after_extensions.size()));
    REQUIRE(CBB_flush(cbb.get()));
    REQUIRE(CBB_add_bytes(cbb.get(), after_message.data(), after_message.size()));
    Bytes handshake(CBB_data(cbb.get()), CBB_data(cbb.get()) + CBB_len(cbb.get()));
    return Rerecord(Record(handshake), 1 << 14);
  }

  // Record wraps |handshake| in records without a size check (Rerecord then splits it).
  static Bytes Record(const Bytes& handshake) {
    Bytes out;
    for (size_t off = 0; off < handshake.size(); off += 0xffff) {
      const size_t n = std::min<size_t>(0xffff, handshake.size() - off);
      out.insert(out.end(), {22, 3, 1, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
      out.insert(out.end(), handshake.begin() + static_cast<long>(off), handshake.begin() + static_cast<long>(off + n));
    }
    return out;
  }
};

Bytes SniExtension(const Bytes& name, uint8_t type = 0) {
  Bytes entry = {type, static_cast<uint8_t>(name.size() >> 8), static_cast<uint8_t>(name.size())};
  entry.insert(entry.end(), name.begin(), name.end());
  Bytes ext = {static_cast<uint8_t>(entry.size() >> 8), static_cast<uint8_t>(entry.size())};
  ext.insert(ext.end(), entry.begin(), entry.end());
  return ext;
}

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }

Result ParseAll(ClientHelloPeek& peek, const Bytes& wire) { return peek.Parse(wire); }

// ParseByteByByte feeds growing prefixes; every prefix before the last must be kContinue.
Result ParseByteByByte(ClientHelloPeek& peek, const Bytes& wire, size_t* continues) {
  *continues = 0;
  for (size_t n = 1; n <= wire.size(); ++n) {
    const Result r = peek.Parse(base::ByteSpan(wire.data(), n));
    if (r != Result::kContinue) return r;
    ++*continues;
  }
  return Result::kContinue;
}

std::string ErrorOf(const Bytes& wire, size_t cap = tls::kDefaultMaxClientHelloLen) {
  ClientHelloPeek peek(cap);
  if (peek.Parse(wire) != Result::kError) return "<no error>";
  return std::string(peek.error());
}

// ReadSeed reads a committed fuzz seed. Its first byte is the fuzzer's split seed, not wire data.
Bytes ReadSeed(const std::string& name) {
  const char* root = std::getenv("P2P_TEST_SRCDIR");
  const std::string path = std::string(root ? root : ".") + "/fuzz/corpus/client_hello/" + name;
  std::ifstream f(path, std::ios::binary);
  INFO("seed " << path);
  REQUIRE(f.good());
  Bytes seed(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>{});
  REQUIRE(!seed.empty());
  return Bytes(seed.begin() + 1, seed.end());
}

}  // namespace

TEST_CASE("ClientHello peek: BoringSSL's own hello gives SNI (lower-cased), ALPN and TLS 1.3") {
  const Bytes wire = RealHello({"Vault.Example.INTERNAL", {"h2", "http/1.1"}, TLS1_3_VERSION, true});
  ClientHelloPeek peek;
  REQUIRE(ParseAll(peek, wire) == Result::kDone);
  CHECK(peek.info().sni == "vault.example.internal");
  CHECK(peek.info().alpn == std::vector<std::string>{"h2", "http/1.1"});
  CHECK(peek.info().offers_tls13);
  CHECK(peek.info().legacy_version == 0x0303);
  CHECK(peek.hello_end() == wire.size());
  CHECK(peek.error().empty());
  // The result is sticky, and bytes after the hello (the client's next flight) are not looked at.
  Bytes longer = wire;
  longer.insert(longer.end(), {20, 3, 3, 0, 1, 1});
  CHECK(peek.Parse(longer) == Result::kDone);
}

TEST_CASE("ClientHello peek: a TLS 1.2-only client without SNI or ALPN") {
  const Bytes wire = RealHello({"", {}, TLS1_2_VERSION, false});
  ClientHelloPeek peek;
  REQUIRE(ParseAll(peek, wire) == Result::kDone);
  CHECK(peek.info().sni.empty());
  CHECK(peek.info().alpn.empty());
  CHECK_FALSE(peek.info().offers_tls13);
}

TEST_CASE("ClientHello peek: byte by byte, every prefix is kContinue until the hello is complete") {
  const Bytes wire = RealHello({"app.example.internal", {"http/1.1"}});
  ClientHelloPeek peek;
  size_t continues = 0;
  REQUIRE(ParseByteByByte(peek, wire, &continues) == Result::kDone);
  CHECK(continues == wire.size() - 1);
  CHECK(peek.info().sni == "app.example.internal");
  CHECK(peek.info().alpn == std::vector<std::string>{"http/1.1"});
}

TEST_CASE("ClientHello peek: a hello split over many records is reassembled") {
  const Bytes one = RealHello({"split.example.internal", {"h2"}});
  for (size_t fragment : {1, 2, 7, 100, 300}) {
    INFO("fragment " << fragment);
    const Bytes wire = Rerecord(one, fragment);
    REQUIRE(wire.size() > one.size());
    ClientHelloPeek all;
    REQUIRE(ParseAll(all, wire) == Result::kDone);
    CHECK(all.info().sni == "split.example.internal");
    CHECK(all.info().alpn == std::vector<std::string>{"h2"});
    ClientHelloPeek trickle;
    size_t continues = 0;
    REQUIRE(ParseByteByByte(trickle, wire, &continues) == Result::kDone);
    CHECK(continues == wire.size() - 1);
    CHECK(trickle.info().sni == "split.example.internal");
  }
}

TEST_CASE("ClientHello peek: hellos captured from curl and openssl s_client (the fuzz seeds)") {
  struct Seed {
    const char* name;
    const char* sni;
    std::vector<std::string> alpn;
    bool tls13;
  };
  const std::vector<Seed> seeds = {
      {"valid_curl", "vault.example.internal", {"h2", "http/1.1"}, true},
      {"valid_openssl_s_client", "app.example.internal", {"h2", "http/1.1"}, true},
      {"valid_openssl_tls12", "legacy.example.internal", {}, false},
      {"no_sni", "", {"h2", "http/1.1"}, true},
      {"valid_sni_boringssl", "vault.example.internal", {}, true},
      {"alpn_h2", "h2.example.internal", {"h2"}, true},
  };
  for (const Seed& s : seeds) {
    INFO(s.name);
    const Bytes wire = ReadSeed(s.name);
    ClientHelloPeek peek;
    REQUIRE(peek.Parse(wire) == Result::kDone);
    CHECK(peek.info().sni == s.sni);
    CHECK(peek.info().alpn == s.alpn);
    CHECK(peek.info().offers_tls13 == s.tls13);
  }
  CHECK(ErrorOf(ReadSeed("not_ssl")) == "not a TLS handshake record");
  CHECK(ErrorOf(ReadSeed("too_large")) == "ClientHello too large");
}

TEST_CASE("ClientHello peek: not TLS at all fails at the first byte") {
  ClientHelloPeek peek;
  const Bytes http = Str("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(peek.Parse(base::ByteSpan(http.data(), 1)) == Result::kError);
  CHECK(peek.error() == "not a TLS handshake record");
  CHECK(peek.Parse(http) == Result::kError);  // sticky
  CHECK(ErrorOf({23, 3, 3, 0, 1, 0}) == "not a TLS handshake record");      // application data
  CHECK(ErrorOf({22, 3, 0, 0, 1, 1}) == "unsupported record version");      // SSL 3.0
  CHECK(ErrorOf({22, 3, 4, 0, 1, 1}) == "unsupported record version");
  CHECK(ErrorOf({22, 2, 1, 0, 1, 1}) == "unsupported record version");
  CHECK(ErrorOf({22, 3, 1, 0, 0}) == "empty handshake record");
  CHECK(ErrorOf({22, 3, 1, 0x40, 0x01}) == "record longer than 2^14 bytes");
  CHECK(ErrorOf({22, 3, 1, 0, 4, 2, 0, 0, 0}) == "first handshake message is not a ClientHello");
  // The type is checked as soon as its byte arrives, before the record is complete.
  CHECK(ErrorOf({22, 3, 1, 0, 100, 2}) == "first handshake message is not a ClientHello");
}

TEST_CASE("ClientHello peek: malformed variants of a real hello are errors") {
  const Bytes wire = RealHello({"vault.example.internal", {"h2", "http/1.1"}});
  const Hello base = Hello::Parse(wire);
  {
    // Rebuilding without changes gives the same bytes: the variants below differ in one thing.
    REQUIRE(base.Build() == wire);
  }
  auto error_with = [&](auto change) {
    Hello h = base;
    change(h);
    return ErrorOf(h.Build());
  };
  CHECK(error_with([](Hello& h) { h.extensions.push_back(h.extensions[0]); }) == "duplicate extension");
  CHECK(error_with([](Hello& h) { h.after_extensions = {0}; }) == "bytes after extensions");
  CHECK(error_with([](Hello& h) { h.after_message = {1, 0, 0, 0}; }) == "data after ClientHello in its record");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtServerName) = SniExtension({}); }) == "empty server_name");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtServerName) = SniExtension(Str(std::string_view("a\0b", 3))); }) ==
        "NUL in server_name");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtServerName) = SniExtension(Bytes(256, 'a')); }) ==
        "server_name longer than 255 bytes");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtServerName) = SniExtension(Str("a.b"), 1); }) ==
        "server_name is not a host_name");
  CHECK(error_with([](Hello& h) {
          Bytes two = SniExtension(Str("a.b"));
          Bytes entry(two.begin() + 2, two.end());
          two.insert(two.end(), entry.begin(), entry.end());
          two[1] = static_cast<uint8_t>(entry.size() * 2);
          *h.Find(tls::kExtServerName) = two;
        }) == "server_name must hold exactly one name");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtServerName) = {0, 1}; }) == "malformed server_name");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtAlpn) = {0, 0}; }) == "empty ALPN list");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtAlpn) = {0, 3, 2, 'h', '2', 0}; }) == "malformed ALPN");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtAlpn) = {0, 4, 2, 'h', '2', 0}; }) == "empty ALPN protocol name");
  CHECK(error_with([](Hello& h) { *h.Find(tls::kExtSupportedVersions) = {3, 3, 4, 3}; }) ==
        "malformed supported_versions");
  CHECK(error_with([](Hello& h) { h.suites.pop_back(); }) == "malformed cipher_suites");
  CHECK(error_with([](Hello& h) { h.suites.clear(); }) == "malformed cipher_suites");
  CHECK(error_with([](Hello& h) { h.session_id.assign(33, 1); }) == "session_id longer than 32 bytes");
  CHECK(error_with([](Hello& h) { h.compression.clear(); }) == "no compression methods");
  CHECK(error_with([](Hello& h) { h.compression = {1}; }) == "null compression not offered");
  CHECK(error_with([](Hello& h) { h.legacy_version = 0x0200; }) == "unsupported ClientHello version");
  // Lengths that run past their container.
  CHECK(error_with([](Hello& h) {
          h.has_extensions = false;
          h.after_extensions = {0, 10, 0, 0};
        }) == "malformed extensions");
  CHECK(error_with([](Hello& h) {
          h.has_extensions = false;
          h.after_extensions = {0, 4, 0xfe, 0, 0, 5};
        }) == "malformed extensions");
  // An unknown extension, even empty, is fine.
  {
    Hello h = base;
    h.extensions.push_back({0xfe00, {}});
    ClientHelloPeek peek;
    CHECK(peek.Parse(h.Build()) == Result::kDone);
  }
  // Without extensions at all (allowed before TLS 1.3), the hello is fine and has no SNI.
  {
    Hello h = base;
    h.has_extensions = false;
    h.extensions.clear();
    ClientHelloPeek peek;
    REQUIRE(peek.Parse(h.Build()) == Result::kDone);
    CHECK(peek.info().sni.empty());
    CHECK_FALSE(peek.info().offers_tls13);
  }
}

TEST_CASE("ClientHello peek: the size cap applies to the reassembled hello, before it is all here") {
  Hello h = Hello::Parse(RealHello({"big.example.internal", {"h2"}}));
  h.extensions.push_back({0xfe01, Bytes(20000, 0)});  // an unknown extension as filler
  const Bytes wire = h.Build();
  REQUIRE(wire.size() > 20000);
  // The default cap refuses it as soon as the handshake header announces the length.
  ClientHelloPeek peek;
  REQUIRE(peek.Parse(base::ByteSpan(wire.data(), 9)) == Result::kError);
  CHECK(peek.error() == "ClientHello too large");
  // A larger cap takes it, across the two records it needs.
  ClientHelloPeek roomy(64 * 1024);
  REQUIRE(roomy.Parse(wire) == Result::kDone);
  CHECK(roomy.info().sni == "big.example.internal");
  // A cap counts handshake bytes, whatever the records: many small records hit it too.
  CHECK(ErrorOf(Rerecord(wire, 1000), 8 * 1024) == "ClientHello too large");
}

TEST_CASE("ClientHello peek: input that shrinks between calls is an error") {
  const Bytes wire = Rerecord(RealHello({"a.example.internal", {}}), 50);
  ClientHelloPeek peek;
  REQUIRE(peek.Parse(base::ByteSpan(wire.data(), 120)) == Result::kContinue);
  CHECK(peek.Parse(base::ByteSpan(wire.data(), 10)) == Result::kError);
  CHECK(peek.error() == "input shorter than before");
}

TEST_CASE("ClientHello peek: AlertRecord is a fatal alert a real client understands") {
  CHECK(tls::AlertRecord(tls::kAlertUnrecognizedName) == Bytes{21, 3, 3, 0, 2, 2, 112});
  BoringClient client({"nobody.example.internal", {}});
  const Bytes hello = client.Hello();
  ClientHelloPeek peek;
  REQUIRE(peek.Parse(hello) == Result::kDone);
  const Bytes alert = tls::AlertRecord(tls::kAlertUnrecognizedName);
  REQUIRE(BIO_write(client.rbio, alert.data(), static_cast<int>(alert.size())) == static_cast<int>(alert.size()));
  ERR_clear_error();
  REQUIRE(SSL_do_handshake(client.ssl.get()) == -1);
  REQUIRE(SSL_get_error(client.ssl.get(), -1) == SSL_ERROR_SSL);
  const uint32_t e = ERR_peek_error();
  CHECK(ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_UNRECOGNIZED_NAME);
  ERR_clear_error();
}
