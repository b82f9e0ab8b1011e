// tunnel.cc: ServerTunnel and EchoReply.
#include "server/tunnel.h"

#include <cstring>
#include <vector>

#include "base/log.h"

namespace p2proxy::server {
namespace {

// Checksum: the Internet checksum (RFC 1071) of |data|, ready to store big-endian.
uint16_t Checksum(absl::Span<const uint8_t> data) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += (static_cast<uint32_t>(data[i]) << 8) | data[i + 1];
  if (i < data.size()) sum += static_cast<uint32_t>(data[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

std::string KeyBytes(const crypto::PublicKey& k) { return std::string(reinterpret_cast<const char*>(k.data()), k.size()); }

}  // namespace

bool EchoReply(const base::IpAddress& self, absl::Span<uint8_t> p) {
  if (self.family != base::IpAddress::kV4 || p.size() < 20 + 8 || p[0] != 0x45) return false;
  const size_t total = (static_cast<size_t>(p[2]) << 8) | p[3];
  if (total < 28 || total > p.size()) return false;
  if (((p[6] & 0x3f) | p[7]) != 0) return false;  // a fragment (MF set or an offset)
  if (p[9] != 1 || std::memcmp(p.data() + 16, self.bytes.data(), 4) != 0) return false;
  if (p[20] != 8 || p[21] != 0) return false;  // echo request, code 0
  if (Checksum(p.subspan(0, 20)) != 0 || Checksum(p.subspan(20, total - 20)) != 0) return false;
  uint8_t src[4];
  std::memcpy(src, p.data() + 12, 4);
  std::memcpy(p.data() + 12, p.data() + 16, 4);
  std::memcpy(p.data() + 16, src, 4);
  p[8] = 64;  // TTL
  Store16(p.data() + 10, 0);
  Store16(p.data() + 10, Checksum(p.subspan(0, 20)));
  p[20] = 0;  // echo reply
  Store16(p.data() + 22, 0);
  Store16(p.data() + 22, Checksum(p.subspan(20, total - 20)));
  return true;
}

absl::StatusOr<std::unique_ptr<ServerTunnel>> ServerTunnel::Start(net::Loop& loop, base::Clock& clock,
                                                                  const base::SocketAddress& listen,
                                                                  const crypto::Key& private_key,
                                                                  const base::IpAddress& self, EndpointFn on_endpoint,
                                                                  Relay::Options relay) {
  std::unique_ptr<ServerTunnel> t(new ServerTunnel(self, std::move(on_endpoint)));
  ServerTunnel* raw = t.get();
  t->relay_ = std::make_unique<Relay>(clock, relay);
  tunnel::WgTransport::Options options;
  options.listen_port = listen.port();
  options.bind_ip = listen.IpString();
  options.endpoint_changed = [raw](wg::Peer& peer) { raw->OnEndpoint(peer); };
  options.after_batch = [raw] { raw->SendReplies(); };
  options.intercept = [raw](const base::Datagram& d) {
    return raw->relay_->Handle(d, [raw](const base::SocketAddress& to, base::ByteSpan frame) {
      raw->transport_->SendDatagram(to, frame);
    });
  };
  options.stream_send = [raw](const base::SocketAddress& to, base::ByteSpan datagram) { raw->wg_tls_->Send(to, datagram); };
  t->wg_tls_ = std::make_unique<WgOverTls>(loop, [raw](absl::Span<const base::Datagram> batch) {
    raw->transport_->Inject(batch);
  });
  auto transport = tunnel::WgTransport::Create(loop, clock, std::move(options),
                                               [raw](wg::Peer& from, base::ByteSpan packet) { raw->OnPacket(from, packet); });
  if (!transport.ok()) {
    return absl::Status(transport.status().code(),
                        absl::StrCat("--wireguard_listen=", listen.ToString(), ": ", transport.status().message()));
  }
  t->transport_ = std::move(*transport);
  t->transport_->device().SetPrivateKey(private_key);
  return t;
}

void ServerTunnel::Sync(const Deployment& d) {
  std::map<std::string, Node, std::less<>> want;
  for (const auto* list : {&d.sites, &d.devices}) {
    for (const NodeRecord& n : *list) {
      if (n.revoked || n.wireguard_public_key.size() != 32 || n.address.empty()) continue;
      want.emplace(n.wireguard_public_key, Node{n.id, n.address});
    }
  }
  wg::Device& dev = transport_->device();
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    auto w = want.find(it->first);
    if (w != want.end() && w->second.address == it->second.address) {
      ++it;
      continue;
    }
    crypto::PublicKey key;
    std::memcpy(key.data(), it->first.data(), key.size());
    dev.RemovePeer(key);
    if (auto a = base::IpPrefix::Parse(it->second.address); a.ok()) relay_->RemoveNode(a->address);
    key_of_.erase(it->second.id);
    it = nodes_.erase(it);
  }
  for (auto& [key_bytes, node] : want) {
    if (nodes_.count(key_bytes) != 0) continue;
    auto prefix = base::IpPrefix::Parse(node.address);
    if (!prefix.ok()) continue;
    wg::PeerConfig pc;
    std::memcpy(pc.public_key.data(), key_bytes.data(), pc.public_key.size());
    pc.allowed_ips = {*prefix};
    if (!dev.AddPeer(pc).ok()) continue;
    key_of_[node.id] = key_bytes;
    nodes_.emplace(key_bytes, std::move(node));
  }
  transport_->Kick();
}

const base::SocketAddress* ServerTunnel::EndpointOf(const std::string& node_id) const {
  auto k = key_of_.find(node_id);
  if (k == key_of_.end()) return nullptr;
  crypto::PublicKey key;
  std::memcpy(key.data(), k->second.data(), key.size());
  const wg::Peer* peer = transport_->device().FindPeer(key);
  return peer == nullptr ? nullptr : peer->endpoint();
}

Relay::NodeTraffic ServerTunnel::RelayTrafficOf(const std::string& node_id) const {
  auto key = key_of_.find(node_id);
  if (key == key_of_.end()) return {};
  auto node = nodes_.find(key->second);
  if (node == nodes_.end()) return {};
  auto a = base::IpPrefix::Parse(node->second.address);
  return a.ok() ? relay_->TrafficOf(a->address) : Relay::NodeTraffic();
}

void ServerTunnel::OnEndpoint(wg::Peer& peer) {
  auto it = nodes_.find(KeyBytes(peer.public_key()));
  if (it == nodes_.end() || peer.endpoint() == nullptr) return;
  ++counters_.endpoint_changes;
  if (auto a = base::IpPrefix::Parse(it->second.address); a.ok()) relay_->SetEndpoint(a->address, *peer.endpoint());
  if (on_endpoint_) on_endpoint_(it->second.id, *peer.endpoint());
}

void ServerTunnel::OnPacket(wg::Peer& from, base::ByteSpan packet) {
  if (packet.size() > 1500 || replies_.size() >= kMaxRepliesPerBatch) {
    ++counters_.dropped;
    return;
  }
  std::vector<uint8_t> reply(packet.begin(), packet.end());
  if (!EchoReply(self_, absl::MakeSpan(reply))) {
    ++counters_.dropped;
    return;
  }
  replies_.emplace_back(&from, std::move(reply));
}

void ServerTunnel::SendReplies() {
  // Peers are only removed by Sync, never inside a batch: the pointers are still good.
  for (auto& [peer, reply] : replies_) {
    base::ByteSpan out(reply.data(), reply.size());
    transport_->device().SendPacketsTo(peer, absl::MakeConstSpan(&out, 1));
    ++counters_.echo_replies;
  }
  replies_.clear();
}

}  // namespace p2proxy::server
