// netstack.cc: NetStack: lwIP's netif, input hook, output batching and timers.
#include "stack/netstack.h"

#include <algorithm>

#include <atomic>
#include <cstring>

extern "C" {
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "p2p_lwip_port.h"
}

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "stack/tcp_stream.h"
#include "stack/udp_endpoint.h"

namespace p2proxy::stack {

namespace {
std::atomic<bool> g_stack_exists{false};
bool g_lwip_initialized = false;
}  // namespace

// NetStackLwip holds the C callbacks lwIP calls.
struct NetStackLwip {
  static err_t Init(struct netif* nif) {
    auto* self = static_cast<NetStack*>(nif->state);
    nif->name[0] = 'w';
    nif->name[1] = 'g';
    nif->mtu = static_cast<u16_t>(self->mtu_);
    nif->output = &NetStackLwip::Output;
    nif->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP;
    return ERR_OK;
  }

  static err_t Output(struct netif* nif, struct pbuf* p, const ip4_addr_t*) {
    auto* self = static_cast<NetStack*>(nif->state);
    ++self->counters_.packets_out;
    // A TCP segment with RST: a refused connection or an abort.
    if (p->len >= 20 + 14) {
      const auto* b = static_cast<const uint8_t*>(p->payload);
      const size_t ihl = (b[0] & 0x0f) * 4u;
      if (b[9] == IP_PROTO_TCP && p->len >= ihl + 14 && (b[ihl + 13] & 0x04)) ++self->counters_.tcp_rst_sent;
    }
    const size_t len = p->tot_len;
    if (self->out_batch_.size() == NetStack::kBatchSlots || len > NetStack::kSlotSize) self->FlushOutput();
    if (len > NetStack::kSlotSize) {
      std::vector<uint8_t> big(len);
      pbuf_copy_partial(p, big.data(), static_cast<u16_t>(len), 0);
      base::ByteSpan one(big);
      self->output_(absl::MakeConstSpan(&one, 1));
      return ERR_OK;
    }
    uint8_t* slot = self->out_arena_.data() + self->out_batch_.size() * NetStack::kSlotSize;
    pbuf_copy_partial(p, slot, static_cast<u16_t>(len), 0);
    // Sent when the current activity ends (NetStack::AfterActivity), as one batch.
    self->out_batch_.emplace_back(slot, len);
    return ERR_OK;
  }

  // The netif accepts only its own address. For a packet to a served address we set the
  // netif's address to the packet's destination for the time it is processed (restored in
  // Input): lwIP then accepts it, and replies carry the right source. This keeps lwIP unforked.
  static int InputHook(void* ctx, struct pbuf* p, struct netif* inp) {
    auto* self = static_cast<NetStack*>(ctx);
    if (p->len < 20) return 0;  // lwIP drops it
    const auto* b = static_cast<const uint8_t*>(p->payload);
    if ((b[0] >> 4) != 4) return 0;
    uint32_t dst;
    std::memcpy(&dst, b + 16, 4);
    if (self->Serves(lwip_ntohl(dst))) {
      ip4_addr_set_u32(ip_2_ip4(&inp->ip_addr), dst);
    } else if (dst != ip4_addr_get_u32(netif_ip4_addr(inp))) {
      ++self->counters_.dropped_not_served;
    }
    return 0;
  }
};

NetStack::NetStack(net::Loop& loop, const base::IpAddress& node_address, size_t mtu, OutputFn output)
    : loop_(loop), node_address_(node_address), mtu_(mtu), output_(std::move(output)),
      netif_(new struct netif()), timer_(loop), out_arena_(kBatchSlots * kSlotSize) {
  out_batch_.reserve(kBatchSlots);
}

absl::StatusOr<std::unique_ptr<NetStack>> NetStack::Create(net::Loop& loop,
                                                           const base::IpAddress& node_address,
                                                           size_t mtu, OutputFn output) {
  if (node_address.family != base::IpAddress::kV4) {
    return absl::InvalidArgumentError("stack: the node address must be IPv4");
  }
  if (mtu < 576 || mtu > 65535) return absl::InvalidArgumentError(absl::StrCat("stack: MTU ", mtu, " out of range"));
  if (g_stack_exists.exchange(true)) {
    return absl::FailedPreconditionError("stack: a NetStack already exists in this process (lwIP is global)");
  }
  std::unique_ptr<NetStack> s(new NetStack(loop, node_address, mtu, std::move(output)));
  if (!g_lwip_initialized) {
    lwip_init();
    g_lwip_initialized = true;
  }
  ip4_addr_t addr, mask, gw;
  ip4_addr_set_u32(&addr, lwip_htonl(node_address.v4()));
  IP4_ADDR(&mask, 255, 255, 255, 255);
  IP4_ADDR(&gw, 0, 0, 0, 0);
  if (!netif_add(s->netif_.get(), &addr, &mask, &gw, s.get(), &NetStackLwip::Init, ip4_input)) {
    g_stack_exists = false;
    return absl::InternalError("stack: netif_add failed");
  }
  netif_set_default(s->netif_.get());
  netif_set_up(s->netif_.get());
  netif_set_link_up(s->netif_.get());
  p2p_lwip_set_ip4_input_hook(&NetStackLwip::InputHook, s.get());
  return s;
}

NetStack::~NetStack() {
  p2p_lwip_set_ip4_input_hook(nullptr, nullptr);
  netif_remove(netif_.get());
  g_stack_exists = false;
}

void NetStack::Serve(const base::IpPrefix& prefix) {
  if (prefix.address.family == base::IpAddress::kV4) served_.push_back(prefix);
}

bool NetStack::Unserve(const base::IpPrefix& prefix) {
  auto it = std::find(served_.begin(), served_.end(), prefix);
  if (it == served_.end()) return false;
  served_.erase(it);
  return true;
}

bool NetStack::Serves(uint32_t addr) const {
  for (const auto& p : served_) {
    const uint32_t mask = p.length == 0 ? 0 : ~uint32_t{0} << (32 - p.length);
    if ((addr & mask) == p.address.v4()) return true;
  }
  return false;
}

void NetStack::Input(absl::Span<const base::ByteSpan> packets) {
  for (base::ByteSpan pkt : packets) {
    if (pkt.size() < 20 || pkt.size() > 65535 || (pkt[0] >> 4) != 4) {
      ++counters_.dropped_malformed;
      continue;
    }
    struct pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(pkt.size()), PBUF_POOL);
    if (!p) {
      ++counters_.dropped_no_buffer;
      continue;
    }
    pbuf_take(p, pkt.data(), static_cast<u16_t>(pkt.size()));
    ++counters_.packets_in;
    netif_->input(p, netif_.get());
    // Undo the input hook's address switch (see NetStackLwip::InputHook).
    ip4_addr_set_u32(ip_2_ip4(&netif_->ip_addr), lwip_htonl(node_address_.v4()));
  }
  AfterActivity();
}

void NetStack::FlushOutput() {
  if (out_batch_.empty()) return;
  output_(absl::MakeConstSpan(out_batch_));
  out_batch_.clear();
}

void NetStack::AfterActivity() {
  FlushOutput();
  ArmTimer();
}

void NetStack::ArmTimer() {
  const u32_t sleep = sys_timeouts_sleeptime();
  if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE) {
    timer_.Stop();
    return;
  }
  timer_.Start(absl::Milliseconds(sleep), [this] {
    sys_check_timeouts();
    AfterActivity();
  });
}

absl::StatusOr<std::unique_ptr<TcpListener>> NetStack::ListenTcp(const base::IpAddress& addr, uint16_t port,
                                                                 AcceptFn accept) {
  return TcpListener::Create(*this, addr, port, std::move(accept));
}

void NetStack::ConnectTcp(const base::IpAddress& addr, uint16_t port, ConnectFn done) {
  TcpConnector::Start(*this, addr, port, std::move(done));
}

absl::StatusOr<std::unique_ptr<UdpEndpoint>> NetStack::BindUdp(const base::IpAddress& addr, uint16_t port,
                                                               RecvFn recv) {
  return UdpEndpoint::Create(*this, addr, port, std::move(recv));
}

void NetStack::CountAccepted() { ++counters_.tcp_accepted; }

const StackCounters& NetStack::counters() {
  counters_.tcp_segments_sent = lwip_stats.tcp.xmit;
  counters_.tcp_segments_dropped = lwip_stats.tcp.drop;
  return counters_;
}

void NetStack::AsAddress(const base::IpAddress& addr, absl::FunctionRef<void()> fn) {
  ip4_addr_set_u32(ip_2_ip4(&netif_->ip_addr), lwip_htonl(addr.v4()));
  fn();
  ip4_addr_set_u32(ip_2_ip4(&netif_->ip_addr), lwip_htonl(node_address_.v4()));
}

}  // namespace p2proxy::stack
