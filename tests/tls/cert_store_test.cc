// ServerCertificate from PEM (and the errors that name the problem), and CertStore's choice of
// certificate by SNI: exact, one-label wildcard, default, case, removal and hot swap.
#include "tls/cert_store.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "tls/test_certs.h"

using namespace p2proxy;
using p2proxy::tls::CertStore;
using p2proxy::tls::ServerCertificate;
using p2proxy::tls::testing::TestCa;
using p2proxy::tls::testing::TestLeaf;

namespace {

std::shared_ptr<const ServerCertificate> Make(TestCa& ca, const std::vector<std::string>& names) {
  const TestLeaf leaf = ca.Issue(names);
  auto cert = ServerCertificate::FromPem(leaf.chain_pem, leaf.key_pem);
  REQUIRE(cert.ok());
  return *cert;
}

}  // namespace

TEST_CASE("ServerCertificate: built from PEM, with the leaf's DNS names and a TLS 1.2+ context") {
  TestCa ca;
  const TestLeaf leaf = ca.Issue({"Vault.Example.Internal", "*.apps.example.internal"});
  auto cert = ServerCertificate::FromPem(leaf.chain_pem, leaf.key_pem);
  REQUIRE(cert.ok());
  CHECK((*cert)->dns_names() == std::vector<std::string>{"vault.example.internal", "*.apps.example.internal"});
  CHECK((*cert)->alpn() == std::vector<std::string>{"h2", "http/1.1"});
  REQUIRE((*cert)->ctx() != nullptr);
  CHECK(SSL_CTX_get_min_proto_version((*cert)->ctx()) == TLS1_2_VERSION);
  CHECK(SSL_CTX_get_max_proto_version((*cert)->ctx()) == TLS1_3_VERSION);
  CHECK(!(*cert)->leaf_der().empty());
  CHECK((*cert)->leaf() != nullptr);
  // A chain with the CA after the leaf is accepted too.
  auto chained = ServerCertificate::FromPem(leaf.chain_pem + ca.cert_pem(), leaf.key_pem);
  REQUIRE(chained.ok());
  CHECK((*chained)->leaf_der() == (*cert)->leaf_der());
}

TEST_CASE("ServerCertificate: errors name the problem") {
  TestCa ca;
  const TestLeaf a = ca.Issue({"a.example.internal"});
  const TestLeaf b = ca.Issue({"b.example.internal"});
  auto message = [](const absl::StatusOr<std::shared_ptr<const ServerCertificate>>& r) {
    REQUIRE_FALSE(r.ok());
    return std::string(r.status().message());
  };
  CHECK(message(ServerCertificate::FromPem("", a.key_pem)) == "certificate: no PEM certificate found");
  CHECK(message(ServerCertificate::FromPem("not a pem", a.key_pem)) == "certificate: no PEM certificate found");
  CHECK(message(ServerCertificate::FromPem(a.chain_pem, "")) == "key: no PEM private key found");
  CHECK(message(ServerCertificate::FromPem(a.chain_pem, b.key_pem)) == "key does not match certificate");
  // A certificate block whose base64 is damaged is a bad PEM, not "none found".
  std::string broken = a.chain_pem;
  broken.replace(broken.find('\n') + 10, 4, "!!!!");
  CHECK(message(ServerCertificate::FromPem(broken, a.key_pem)).rfind("certificate: bad PEM", 0) == 0);
  tls::ServerTlsOptions bad_alpn;
  bad_alpn.alpn = {"h2", ""};
  CHECK(message(ServerCertificate::FromPem(a.chain_pem, a.key_pem, bad_alpn)).rfind("alpn:", 0) == 0);
  CHECK(ServerCertificate::FromPem(a.chain_pem, a.key_pem).ok());
}

TEST_CASE("CertStore: exact names first, then a one-label wildcard, then the default") {
  TestCa ca;
  auto vault = Make(ca, {"vault.example.internal"});
  auto wild = Make(ca, {"*.example.internal"});
  auto fallback = Make(ca, {"fallback.example.internal"});
  CertStore store;
  REQUIRE(store.Put("vault.example.internal", vault).ok());
  REQUIRE(store.Put("*.example.internal", wild).ok());
  CHECK(store.size() == 2);

  CHECK(store.Find("vault.example.internal") == vault);
  CHECK(store.Find("VAULT.Example.Internal") == vault);  // case-insensitive
  CHECK(store.Find("wiki.example.internal") == wild);
  CHECK(store.Find("Wiki.EXAMPLE.internal") == wild);
  // A wildcard covers exactly one more label on the left.
  CHECK(store.Find("a.b.example.internal") == nullptr);
  CHECK(store.Find("example.internal") == nullptr);
  CHECK(store.Find(".example.internal") == nullptr);
  CHECK(store.Find("") == nullptr);
  CHECK(store.Find("vault.example.internal.evil") == nullptr);

  store.SetDefault(fallback);
  CHECK(store.Find("a.b.example.internal") == fallback);
  CHECK(store.Find("") == fallback);  // a client without SNI
  CHECK(store.Find("other.test") == fallback);
  CHECK(store.Find(std::string(300, 'a')) == fallback);
  store.SetDefault(nullptr);
  CHECK(store.Find("other.test") == nullptr);
}

TEST_CASE("CertStore: Remove drops exactly the name given") {
  TestCa ca;
  auto vault = Make(ca, {"vault.example.internal"});
  auto wild = Make(ca, {"*.example.internal"});
  CertStore store;
  REQUIRE(store.Put("vault.example.internal", vault).ok());
  REQUIRE(store.Put("*.example.internal", wild).ok());
  CHECK(store.Remove("VAULT.example.internal"));
  CHECK_FALSE(store.Remove("vault.example.internal"));
  CHECK(store.Find("vault.example.internal") == wild);  // the wildcard still covers it
  CHECK(store.Remove("*.example.internal"));
  CHECK(store.Find("vault.example.internal") == nullptr);
  CHECK_FALSE(store.Remove("*.example.internal"));
  CHECK(store.size() == 0);
}

TEST_CASE("CertStore: Put swaps the certificate, and a holder of the old one keeps it") {
  TestCa ca;
  auto a = Make(ca, {"vault.example.internal"});
  auto b = Make(ca, {"vault.example.internal"});
  CertStore store;
  REQUIRE(store.Put("vault.example.internal", a).ok());
  // A connection took the certificate...
  std::shared_ptr<const ServerCertificate> in_use = store.Find("vault.example.internal");
  REQUIRE(in_use == a);
  std::weak_ptr<const ServerCertificate> old = a;
  a.reset();
  // ...then the store moved on to b: new lookups get b, the connection still has a.
  REQUIRE(store.Put("vault.example.internal", b).ok());
  CHECK(store.Find("vault.example.internal") == b);
  CHECK(store.size() == 1);
  REQUIRE_FALSE(old.expired());
  CHECK(in_use->leaf_der() != b->leaf_der());
  // The old certificate goes when its last connection does.
  in_use.reset();
  CHECK(old.expired());
}

TEST_CASE("CertStore: names that are not names are refused, and the store is unchanged") {
  TestCa ca;
  auto cert = Make(ca, {"x.example.internal"});
  CertStore store;
  for (const char* bad : {"", "*", "*.", "*.internal", "a.*.example.internal", "*a.example.internal",
                          "**.example.internal", "a..example.internal", ".example.internal",
                          "example.internal."}) {
    INFO(bad);
    CHECK_FALSE(store.Put(bad, cert).ok());
  }
  CHECK_FALSE(store.Put(std::string(256, 'a'), cert).ok());
  CHECK_FALSE(store.Put(std::string("a\0b.example", 11), cert).ok());
  CHECK_FALSE(store.Put("ok.example.internal", nullptr).ok());
  CHECK(store.size() == 0);
  CHECK(store.Put("*.example.internal", cert).ok());
}
