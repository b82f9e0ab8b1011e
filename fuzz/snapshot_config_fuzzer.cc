// snapshot_config_fuzzer: a pushed Snapshot made into a site's and a client's config
// (site::SiteConfigFromSnapshot, client::ClientConfigFromSnapshot) on arbitrary bytes.
//
// The bytes are read two ways, so both seed corpora serve: as one serialized Frame
// (ParseFromArray; the seeds of corpus/snapshot_config/, which mutate best), and as
// control_frame_fuzzer reads them, byte 0 then a stream of length-prefixed frames (FrameReader;
// the seeds of corpus/control_frame/). Each frame that parses and that ValidateFrame accepts as
// a Snapshot goes to both conversions, as a managed site (node id "s-1", the seeds' own site) and
// as a managed client (a fixed key) with a default local ClientConfig would receive it.
//
// Errors must be InvalidArgument "snapshot: ..." of 1 to 1,024 bytes that repeat no secret: not
// the fixed WireGuard private key (base64, a prefix of it, or raw; unless the input holds that
// text itself and a value was echoed), not a pushed certificate key.
// A site config must come from the snapshot: the same peers and resources (each by name, with
// its address, port, kind and this site's target), every https resource with its pushed
// certificate and key in memory and no file names, no other resource with either. A client
// config must keep the client's rules: the snapshot's version, its peers with unique keys none
// the client's own, the local resolver settings, and every record's address inside
// resource_range (and not the resolver's). WipeFrameSecrets must then leave no key in the frame.
// A failure aborts.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "base/ip_prefix.h"
#include "client/client_config.h"
#include "client/snapshot_config.h"
#include "control/control.pb.h"
#include "control/framing.h"
#include "control/validate.h"
#include "crypto/keys.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"
#include "google/protobuf/stubs/logging.h"
#include "site/site_config.h"
#include "site/snapshot_config.h"

namespace {

using p2proxy::base::ByteSpan;
using p2proxy::base::IpAddress;
using p2proxy::base::SocketAddress;
using p2proxy::control::FrameReader;
using p2proxy::control::wire::Frame;
using p2proxy::control::wire::Snapshot;

void Check(bool ok) {
  if (!ok) std::abort();
}

// kMaxErrorLen: the same bound as Ack.error, which carries these messages to the server.
constexpr size_t kMaxErrorLen = p2proxy::control::kMaxMessageLen;

// The fixed node. The key is RFC 7748 section 6.1's Alice (its public key is known, so the
// seeds can name it without running X25519); it protects nothing. kSiteId and kNodeAddress are
// what fuzz/tools/snapshot_seeds.py gives the site.
constexpr uint8_t kPrivateKey[32] = {
    0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
    0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a};
constexpr uint8_t kPublicKey[32] = {
    0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
    0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a};
constexpr char kSiteId[] = "s-1";
constexpr char kNodeAddress[] = "100.96.0.10";
// A short prefix of the key's base64 is enough to say it leaked: nobody writes 24 characters of
// it by chance, and a value cut short in a message still shows its start.
constexpr size_t kKeyPrefixLen = 24;
// A pushed certificate key is looked for only when it is longer than any value a message may
// repeat (values are cut to 64 bytes), so that a name that happens to equal it is not a leak.
constexpr size_t kMinPemToFind = 128;

struct Fixture {
  p2proxy::site::ManagedSite site;
  p2proxy::crypto::PublicKey own_key{};
  p2proxy::client::ClientConfig local;  // a default config: "{}"
  std::string private_b64;
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    f->site.node_id = kSiteId;
    f->site.private_key = p2proxy::crypto::Key(kPrivateKey);
    auto address = IpAddress::Parse(kNodeAddress);
    Check(address.ok());
    f->site.node_address = *address;
    f->own_key = p2proxy::crypto::PublicFromPrivate(f->site.private_key);
    Check(std::memcmp(f->own_key.data(), kPublicKey, sizeof(kPublicKey)) == 0);
    f->private_b64 = p2proxy::crypto::KeyToBase64(f->site.private_key.span());
    Check(f->private_b64.size() == 44);
    return f;
  }();
  return *fixture;
}

// CheckError: |status| is a refusal a node can put in its Ack and log. |input| is the fuzzer's
// input: messages may repeat values from it (cut short), so the key counts as leaked only if the
// input does not hold it itself. (The fuzzer learns the key's text from this very comparison
// and then writes it into names.)
void CheckError(const absl::Status& status, const Snapshot& snapshot, absl::string_view input) {
  Check(!status.ok());
  Check(status.code() == absl::StatusCode::kInvalidArgument);
  const absl::string_view message = status.message();
  Check(!message.empty() && message.size() <= kMaxErrorLen);
  Check(absl::StartsWith(message, "snapshot: "));
  const Fixture& f = GetFixture();
  for (const absl::string_view secret :
       {absl::string_view(f.private_b64).substr(0, kKeyPrefixLen),
        absl::string_view(reinterpret_cast<const char*>(kPrivateKey), sizeof(kPrivateKey))}) {
    Check(!absl::StrContains(message, secret) || absl::StrContains(input, secret));
  }
  if (snapshot.has_site()) {
    for (const auto& c : snapshot.site().certificates()) {
      if (c.private_key_pem().size() >= kMinPemToFind) {
        Check(!absl::StrContains(message, c.private_key_pem()));
      }
    }
  }
}

p2proxy::site::Protocol ProtocolOf(p2proxy::control::wire::ResourceKind kind) {
  switch (kind) {
    case p2proxy::control::wire::RESOURCE_KIND_HTTPS: return p2proxy::site::Protocol::kHttps;
    case p2proxy::control::wire::RESOURCE_KIND_UDP: return p2proxy::site::Protocol::kUdp;
    default: return p2proxy::site::Protocol::kTcp;
  }
}

void CheckSite(const Snapshot& snapshot, absl::string_view input) {
  const Fixture& f = GetFixture();
  auto config = p2proxy::site::SiteConfigFromSnapshot(snapshot, f.site);
  if (!config.ok()) {
    CheckError(config.status(), snapshot, input);
    return;
  }
  Check(snapshot.has_site());
  Check(config->wireguard.private_key.Equals(f.site.private_key));
  Check(config->wireguard.address == f.site.node_address);

  std::set<std::string> keys;
  for (const auto& p : snapshot.peers()) keys.insert(p.public_key());
  Check(config->peers.size() == static_cast<size_t>(snapshot.peers_size()));
  for (const auto& p : config->peers) {
    Check(keys.count(std::string(p.public_key.begin(), p.public_key.end())) == 1);
  }

  std::map<std::string, const p2proxy::control::wire::Resource*> resources;
  for (const auto& r : snapshot.resources()) resources[r.name()] = &r;
  std::map<std::string, const p2proxy::control::wire::Certificate*> certs;
  for (const auto& c : snapshot.site().certificates()) certs[c.resource()] = &c;
  Check(config->resources.size() == static_cast<size_t>(snapshot.resources_size()));
  std::set<std::string> names;
  for (const p2proxy::site::SiteResource& r : config->resources) {
    Check(names.insert(r.name).second);
    const auto it = resources.find(r.name);
    Check(it != resources.end());
    const p2proxy::control::wire::Resource& in = *it->second;
    Check(r.port == in.port() && r.protocol == ProtocolOf(in.kind()));
    auto address = IpAddress::Parse(in.address());
    Check(address.ok() && *address == r.address);
    // The target is this site's, and only this site's.
    const p2proxy::control::wire::Target* mine = nullptr;
    for (const auto& t : in.targets()) {
      if (t.site_id() == kSiteId) mine = &t;
    }
    Check(mine != nullptr);
    auto target = SocketAddress::Parse(mine->address());
    if (target.ok()) Check(*target == r.target);
    if (r.protocol == p2proxy::site::Protocol::kHttps) {
      const auto cert = certs.find(r.name);
      Check(cert != certs.end());
      Check(!r.certificate_pem.empty() && r.certificate_pem == cert->second->certificate_chain_pem());
      Check(r.key_pem.view() == cert->second->private_key_pem());
      Check(r.certificate_file.empty() && r.key_file.empty());
    } else {
      Check(r.certificate_pem.empty() && r.key_pem.empty());
      Check(r.certificate_file.empty() && r.key_file.empty());
    }
  }
}

void CheckClient(const Snapshot& snapshot, absl::string_view input) {
  const Fixture& f = GetFixture();
  auto config = p2proxy::client::ClientConfigFromSnapshot(snapshot, f.own_key, f.local);
  if (!config.ok()) {
    CheckError(config.status(), snapshot, input);
    return;
  }
  Check(snapshot.has_client());
  Check(config->version == snapshot.version() && config->version != 0);
  Check(config->peers.size() == static_cast<size_t>(snapshot.peers_size()));
  std::set<p2proxy::crypto::PublicKey> keys;
  for (const auto& p : config->peers) {
    Check(p.public_key != f.own_key);
    Check(keys.insert(p.public_key).second);
  }
  const p2proxy::client::ClientConfig& names = config->names;
  // The local settings stay; only zones and names come from the snapshot.
  Check(names.resource_range == f.local.resource_range);
  Check(names.dns.listen == f.local.dns.listen && names.dns.upstreams == f.local.dns.upstreams &&
        names.dns.state_dir == f.local.dns.state_dir && names.dns.ttl == f.local.dns.ttl &&
        names.dns.cache_entries == f.local.dns.cache_entries);
  Check(names.zones.size() == static_cast<size_t>(snapshot.client().zones_size()));
  Check(names.resources.size() == static_cast<size_t>(snapshot.client().records_size()));
  std::set<std::string> records;
  for (const auto& r : snapshot.client().records()) records.insert(r.name());
  for (const p2proxy::client::ClientResource& r : names.resources) {
    Check(records.count(r.name) == 1);
    Check(r.address.family == IpAddress::kV4);
    Check(names.resource_range.Contains(r.address));
    Check(r.address != p2proxy::client::ResolverAddress());
  }
}

void CheckFrame(Frame* frame, absl::string_view input) {
  if (!frame->has_snapshot()) return;
  const absl::Status valid = p2proxy::control::ValidateFrame(*frame);
  if (!valid.ok()) {
    Check(!valid.message().empty());
    return;
  }
  CheckSite(frame->snapshot(), input);
  CheckClient(frame->snapshot(), input);
  p2proxy::control::WipeFrameSecrets(frame);
  for (const auto& c : frame->snapshot().site().certificates()) Check(c.private_key_pem().empty());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs an ERROR line for a string that is not UTF-8; the parse fails anyway.
  google::protobuf::SetLogHandler(nullptr);
  GetFixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  // One serialized Frame.
  {
    Frame frame;
    if (size <= static_cast<size_t>(INT32_MAX) && frame.ParseFromArray(data, static_cast<int>(size))) {
      CheckFrame(&frame, input);
    }
  }
  // A control_frame seed: byte 0 (a chunk size, unused here), then length-prefixed frames.
  if (size > 0) {
    ByteSpan in(data + 1, size - 1);
    FrameReader reader;
    while (!in.empty()) {
      Frame frame;
      if (reader.Read(&in, &frame) != FrameReader::Result::kFrame) break;
      CheckFrame(&frame, input);
    }
  }
  return 0;
}
