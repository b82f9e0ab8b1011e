// wg_quick_config_fuzzer: ParseWgQuickConfig on arbitrary text. Whatever parses is written back
// as a wg-quick file and must parse to the same config; peers' public keys must be unique.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "crypto/keys.h"
#include "wg/wg_quick_config.h"

namespace {

using p2proxy::wg::WgQuickConfig;
using p2proxy::wg::WgQuickPeer;

std::string Prefixes(const std::vector<p2proxy::base::IpPrefix>& prefixes) {
  return absl::StrJoin(prefixes, ", ", [](std::string* out, const p2proxy::base::IpPrefix& p) {
    out->append(p.ToString());
  });
}

std::string Format(const WgQuickConfig& c) {
  using p2proxy::crypto::KeyToBase64;
  std::string out = absl::StrCat("[Interface]\nPrivateKey = ", KeyToBase64(c.private_key.span()),
                                 "\nAddress = ", Prefixes(c.addresses), "\nDNS = ",
                                 absl::StrJoin(c.dns, ", "), "\nFwMark = ", c.fwmark, "\n");
  if (c.listen_port) absl::StrAppend(&out, "ListenPort = ", *c.listen_port, "\n");
  if (c.mtu) absl::StrAppend(&out, "MTU = ", *c.mtu, "\n");
  for (const WgQuickPeer& p : c.peers) {
    absl::StrAppend(&out, "[Peer]\nPublicKey = ", KeyToBase64(p.public_key),
                    "\nAllowedIPs = ", Prefixes(p.allowed_ips),
                    "\nPersistentKeepalive = ", p.persistent_keepalive, "\n");
    if (p.preshared_key) {
      absl::StrAppend(&out, "PresharedKey = ", KeyToBase64(p.preshared_key->span()), "\n");
    }
    if (p.endpoint) absl::StrAppend(&out, "Endpoint = ", p.endpoint->ToString(), "\n");
  }
  return out;
}

bool Same(const WgQuickConfig& a, const WgQuickConfig& b) {
  if (!a.private_key.Equals(b.private_key) || a.addresses != b.addresses ||
      a.listen_port != b.listen_port || a.mtu != b.mtu || a.dns != b.dns ||
      a.fwmark != b.fwmark || a.peers.size() != b.peers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.peers.size(); ++i) {
    const WgQuickPeer& x = a.peers[i];
    const WgQuickPeer& y = b.peers[i];
    if (x.public_key != y.public_key ||
        x.preshared_key.has_value() != y.preshared_key.has_value() ||
        (x.preshared_key && !x.preshared_key->Equals(*y.preshared_key)) ||
        x.allowed_ips != y.allowed_ips || x.endpoint != y.endpoint ||
        x.persistent_keepalive != y.persistent_keepalive) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = p2proxy::wg::ParseWgQuickConfig(text);
  if (!config.ok()) return 0;
  for (size_t i = 0; i < config->peers.size(); ++i) {
    for (size_t j = i + 1; j < config->peers.size(); ++j) {
      if (config->peers[i].public_key == config->peers[j].public_key) std::abort();
    }
  }
  auto again = p2proxy::wg::ParseWgQuickConfig(Format(*config));
  if (!again.ok() || !Same(*config, *again)) std::abort();
  return 0;
}
