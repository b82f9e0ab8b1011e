// status_report.cc: CollectStatus, the status file, and its table.
#include "client/status_report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nat/relay_frame.h"
#include "nat/stream_frame.h"
#include "base/errno_text.h"
#include "crypto/keys.h"
#include "google/protobuf/util/json_util.h"

namespace p2proxy::client {

namespace {

std::string HealthName(SiteSelector::Health h) {
  switch (h) {
    case SiteSelector::Health::kUp:
      return "up";
    case SiteSelector::Health::kDown:
      return "down";
    case SiteSelector::Health::kUnknown:
      break;
  }
  return "unknown";
}

std::string ShortKey(const crypto::PublicKey& key) { return crypto::KeyToBase64(key).substr(0, 8); }

}  // namespace

status::ClientStatus CollectStatus(const StatusInputs& in, absl::Time now) {
  status::ClientStatus s;
  s.set_pid(static_cast<uint32_t>(getpid()));
  s.set_updated_unix_ms(absl::ToUnixMillis(now));
  status::Server* server = s.mutable_server();
  server->set_managed(in.managed);
  server->set_address(in.server_address);
  server->set_connected(in.server_connected);
  server->set_snapshot_version(in.snapshot_version);
  if (in.managed) server->set_wireguard(in.uplink_tls ? "tls" : "udp");
  server->set_node_id(in.node_id);
  server->set_name(in.node_name);
  s.set_node_address(in.node_address);
  if (in.proxies != nullptr) {
    status::Proxies* p = s.mutable_proxies();
    if (auto a = in.proxies->socks5_address()) p->set_socks5(a->ToString());
    if (auto a = in.proxies->http_address()) p->set_http(a->ToString());
    const auto bound = in.proxies->forward_addresses();
    const auto& fwds = in.proxies->options().forwards;
    for (size_t i = 0; i < bound.size() && i < fwds.size(); ++i) {
      p->add_forwards(absl::StrCat(bound[i].ToString(), " -> ", fwds[i].host, ":", fwds[i].port));
    }
    p->set_open_connections(in.proxies->open_connections());
  }
  if (in.client == nullptr) return s;
  WgClient& c = *in.client;
  s.set_mode(c.userspace() ? "userspace" : "tun");
  s.set_interface(c.interface_name());
  wg::Device& dev = c.transport().device();
  s.set_public_key(crypto::KeyToBase64(dev.identity().public_key));
  s.set_listen_port(c.transport().listen_port());

  std::map<crypto::PublicKey, const SiteSelector::SiteStatus*> probed;
  const std::vector<SiteSelector::SiteStatus> sites = c.selector().Status();
  for (const auto& st : sites) probed[st.site.key] = &st;
  std::map<crypto::PublicKey, std::string> names;
  for (const ClientPeer& cp : c.peers()) {
    names[cp.public_key] = cp.name.empty() ? ShortKey(cp.public_key) : cp.name;
    status::Peer* p = s.add_peers();
    p->set_public_key(crypto::KeyToBase64(cp.public_key));
    p->set_name(cp.name);
    for (const auto& prefix : cp.allowed_ips) p->add_allowed_ips(prefix.ToString());
    const wg::Peer* live = dev.FindPeer(cp.public_key);
    if (live != nullptr) {
      if (const base::SocketAddress* ep = live->endpoint()) p->set_endpoint(ep->ToString());
      const wg::PeerStats& ps = live->stats();
      p->set_rx_bytes(ps.rx_bytes);
      p->set_tx_bytes(ps.tx_bytes);
      if (ps.last_handshake > absl::UnixEpoch()) p->set_last_handshake_unix_ms(absl::ToUnixMillis(ps.last_handshake));
      base::IpAddress relay_node;
      const bool relayed = live->endpoint() != nullptr && nat::RelayNodeOf(*live->endpoint(), &relay_node);
      uint32_t stream = 0;
      const bool tls = live->endpoint() != nullptr && nat::StreamIdOf(*live->endpoint(), &stream);
      p->set_path(!live->has_current_keypair() || live->endpoint() == nullptr ? "none"
                  : tls                                                       ? "tls"
                  : relayed && in.uplink_tls                                  ? "relayed-tls"
                  : relayed                                                   ? "relayed"
                                                                              : "direct");
    }
    if (auto it = probed.find(cp.public_key); it != probed.end()) {
      p->set_health(HealthName(it->second->health));
      if (it->second->rtt) p->set_rtt_us(static_cast<uint32_t>(absl::ToInt64Microseconds(*it->second->rtt)));
    }
  }
  if (in.names != nullptr) {
    for (const ClientResource& r : in.names->resources()) {
      status::Resource* out = s.add_resources();
      out->set_name(r.name);
      out->set_address(r.address.ToString());
      if (const SiteCandidate* best = c.selector().PreferredFor(r.address)) {
        out->set_site(best->name.empty() ? ShortKey(best->key) : best->name);
      } else if (const wg::Peer* p = dev.allowed_ips().Lookup(r.address)) {
        out->set_site(names.count(p->public_key()) ? names[p->public_key()] : ShortKey(p->public_key()));
      }
    }
  }
  return s;
}

std::string StatusJson(const status::ClientStatus& s) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(s, &out, o);
  return out;
}

absl::Status WriteStatusFile(const std::string& path, const status::ClientStatus& s) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  const std::string text = StatusJson(s) + "\n";
  // A fresh file of our own: never through a link someone placed at the .tmp name, and a
  // leftover from a crash is replaced.
  unlink(tmp.c_str());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    const std::string what = absl::StrCat("status file ", tmp, ": ", base::ErrnoText(e));
    return e == EACCES || e == EPERM ? absl::PermissionDeniedError(what) : absl::UnavailableError(what);
  }
  const ssize_t n = write(fd, text.data(), text.size());
  const int e = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("status file ", tmp, ": ", n < 0 ? base::ErrnoText(e) : "short write"));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int re = errno;
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("status file ", path, ": ", base::ErrnoText(re)));
  }
  return absl::OkStatus();
}

absl::StatusOr<status::ClientStatus> ReadStatusFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    return absl::NotFoundError(absl::StrCat("no status file at ", path,
                                            ": the client is not running with this state dir (or cannot be read: try sudo)"));
  }
  std::string text;
  text.resize(4 << 20);
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(f.gcount()));
  status::ClientStatus s;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(text, &s, o).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a p2proxy-client status file"));
  }
  return s;
}

std::string FormatStatus(const status::ClientStatus& s, absl::Time now) {
  std::ostringstream out;
  auto ago = [&](int64_t unix_ms) -> std::string {
    if (unix_ms == 0) return "never";
    const absl::Duration d = now - absl::FromUnixMillis(unix_ms);
    if (d < absl::Seconds(1)) return "just now";
    return absl::StrCat(absl::ToInt64Seconds(d), " s ago");
  };
  out << "client:   " << s.mode() << " mode, node " << (s.node_address().empty() ? "-" : s.node_address());
  if (s.mode() == "tun") out << ", interface " << s.interface();
  out << ", udp " << s.listen_port() << ", pid " << s.pid() << "\n";
  if (s.server().managed()) {
    out << "server:   " << (s.server().address().empty() ? "(from the state dir)" : s.server().address()) << ", "
        << (s.server().connected() ? "connected" : "not connected (reconnecting)") << ", snapshot "
        << s.server().snapshot_version() << ", node " << s.server().name() << " (" << s.server().node_id() << ")"
        << (s.server().wireguard() == "tls" ? ", wireguard over TLS (UDP gets no answer)" : "") << "\n";
  } else {
    out << "server:   none (static mode)\n";
  }
  const status::Proxies& p = s.proxies();
  if (!p.socks5().empty() || !p.http().empty() || p.forwards_size() > 0) {
    out << "proxies:  ";
    std::vector<std::string> parts;
    if (!p.socks5().empty()) parts.push_back(absl::StrCat("socks5 ", p.socks5()));
    if (!p.http().empty()) parts.push_back(absl::StrCat("http ", p.http()));
    for (const auto& f : p.forwards()) parts.push_back(absl::StrCat("forward ", f));
    out << absl::StrJoin(parts, ", ") << "; " << p.open_connections() << " open\n";
  }
  out << "\n" << absl::StrFormat("%-20s %-22s %-7s %-9s %-10s %s\n", "PEER", "ENDPOINT", "PATH", "HEALTH", "RTT", "HANDSHAKE");
  for (const status::Peer& peer : s.peers()) {
    const std::string name = peer.name().empty() ? peer.public_key().substr(0, 8) : peer.name();
    const std::string rtt = peer.rtt_us() == 0 ? "-" : absl::StrFormat("%.1f ms", peer.rtt_us() / 1000.0);
    out << absl::StrFormat("%-20s %-22s %-7s %-9s %-10s %s\n", name, peer.endpoint().empty() ? "-" : peer.endpoint(),
                           peer.path(), peer.health().empty() ? "-" : peer.health(), rtt,
                           ago(peer.last_handshake_unix_ms()));
  }
  if (s.resources_size() > 0) {
    out << "\n" << absl::StrFormat("%-32s %-16s %s\n", "RESOURCE", "ADDRESS", "SITE");
    for (const status::Resource& r : s.resources()) {
      out << absl::StrFormat("%-32s %-16s %s\n", r.name(), r.address(), r.site().empty() ? "-" : r.site());
    }
  }
  return out.str();
}

}  // namespace p2proxy::client
