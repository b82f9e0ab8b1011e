// snapshot_config.cc: SiteConfigFromSnapshot.
#include "site/snapshot_config.h"

#include <openssl/mem.h>

#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "crypto/keys.h"
#include "site/site_config.pb.h"
#include "site/site_config_internal.h"

namespace p2proxy::site {
namespace {

// A placeholder the validator accepts as a file name; replaced by the pushed PEM at once.
constexpr absl::string_view kPushed = "(pushed by the server)";

absl::Status SnapshotError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("snapshot: ", path, ": ", what));
}

const char* ProtocolOf(control::wire::ResourceKind kind) {
  switch (kind) {
    case control::wire::RESOURCE_KIND_HTTPS: return "https";
    case control::wire::RESOURCE_KIND_TCP: return "tcp";
    case control::wire::RESOURCE_KIND_UDP: return "udp";
    default: return "";
  }
}

void CopyGrant(const google::protobuf::RepeatedPtrField<std::string>& users,
               const google::protobuf::RepeatedPtrField<std::string>& roles,
               google::protobuf::RepeatedPtrField<std::string>* out_users,
               google::protobuf::RepeatedPtrField<std::string>* out_roles) {
  *out_users = users;
  *out_roles = roles;
}

// WipeKey clears the private key from the message when the conversion is done, on every path.
struct WipeKey {
  config::SiteConfig* message;
  ~WipeKey() {
    std::string* key = message->mutable_wireguard()->mutable_private_key();
    OPENSSL_cleanse(key->data(), key->size());
  }
};

}  // namespace

absl::StatusOr<SiteConfig> SiteConfigFromSnapshot(const control::wire::Snapshot& snapshot, const ManagedSite& self) {
  if (!snapshot.has_site()) return SnapshotError("role", "not a site's snapshot (it has no site section)");
  config::SiteConfig in;
  WipeKey wipe{&in};
  config::WireGuard* wg = in.mutable_wireguard();
  wg->set_private_key(crypto::KeyToBase64(self.private_key));
  wg->set_address(self.node_address.ToString());
  wg->set_listen_port(self.listen_port);
  for (const auto& p : snapshot.peers()) {
    config::Peer* q = in.add_peers();
    if (p.public_key().size() != 32) return SnapshotError("peers", "a public key is not 32 bytes");
    crypto::PublicKey key;
    std::copy(p.public_key().begin(), p.public_key().end(), key.begin());
    q->set_public_key(crypto::KeyToBase64(key));
    *q->mutable_allowed_ips() = p.allowed_ips();
    q->set_endpoint(p.endpoint());
    q->set_persistent_keepalive(p.persistent_keepalive_seconds());
    q->set_user(p.user());
    *q->mutable_roles() = p.roles();
  }
  std::map<std::string, const control::wire::Certificate*, std::less<>> certs;
  for (const auto& c : snapshot.site().certificates()) certs[c.resource()] = &c;
  for (int i = 0; i < snapshot.resources_size(); ++i) {
    const control::wire::Resource& r = snapshot.resources(i);
    const std::string path = absl::StrCat("resources[", i, "] '", r.name(), "'");
    const control::wire::Target* mine = nullptr;
    for (const auto& t : r.targets()) {
      if (t.site_id() == self.node_id) mine = &t;
    }
    if (mine == nullptr || mine->address().empty()) {
      return SnapshotError(path, absl::StrCat("no target for this site (", self.node_id, ")"));
    }
    config::Resource* q = in.add_resources();
    q->set_name(r.name());
    q->set_address(r.address());
    q->set_port(r.port());
    q->set_protocol(ProtocolOf(r.kind()));
    q->set_target(mine->address());
    config::Access* a = q->mutable_access();
    CopyGrant(r.access().users(), r.access().roles(), a->mutable_users(), a->mutable_roles());
    a->set_case_insensitive_paths(r.access().case_insensitive_paths());
    for (const auto& rule : r.access().paths()) {
      config::PathRule* pr = a->add_paths();
      pr->set_prefix(rule.prefix());
      CopyGrant(rule.users(), rule.roles(), pr->mutable_users(), pr->mutable_roles());
    }
    if (r.kind() == control::wire::RESOURCE_KIND_HTTPS) {
      *q->mutable_hostnames() = r.domains();
      if (certs.count(r.name()) == 0) return SnapshotError(path, "an https resource without its certificate");
      q->set_certificate_file(std::string(kPushed));
      q->set_key_file(std::string(kPushed));
    }
  }
  auto validated = ValidateSiteConfigMessage(in);
  if (!validated.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot: ", validated.status().message()));
  }
  SiteConfig out = std::move(*validated);
  for (SiteResource& r : out.resources) {
    if (r.protocol != Protocol::kHttps) continue;
    const control::wire::Certificate& c = *certs.at(r.name);
    r.certificate_file.clear();
    r.key_file.clear();
    r.certificate_pem = c.certificate_chain_pem();
    r.key_pem = crypto::SecretString(c.private_key_pem());
  }
  out.audit_log = self.audit_log;
  out.limits = self.limits;
  return out;
}

}  // namespace p2proxy::site
