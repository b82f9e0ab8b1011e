// udp_endpoint.cc: UdpEndpoint over lwIP's raw UDP API.
#include "stack/udp_endpoint.h"

#include <vector>

extern "C" {
#include "lwip/pbuf.h"
#include "lwip/udp.h"
}

#include "absl/strings/str_cat.h"

namespace p2proxy::stack {

struct LwipUdpCallbacks {
  static void Recv(void* arg, struct udp_pcb*, struct pbuf* p, const ip_addr_t* addr, u16_t port) {
    auto* self = static_cast<UdpEndpoint*>(arg);
    if (!self || !p) {
      if (p) pbuf_free(p);
      return;
    }
    const base::IpAddress from = base::IpAddress::FromBytes(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&ip_2_ip4(addr)->addr), 4));
    if (p->next == nullptr) {
      self->recv_(base::ByteSpan(static_cast<const uint8_t*>(p->payload), p->len), from, port);
    } else {
      std::vector<uint8_t> whole(p->tot_len);
      pbuf_copy_partial(p, whole.data(), p->tot_len, 0);
      self->recv_(whole, from, port);
    }
    pbuf_free(p);
  }
};

absl::StatusOr<std::unique_ptr<UdpEndpoint>> UdpEndpoint::Create(NetStack& stack, const base::IpAddress& addr,
                                                                 uint16_t port, NetStack::RecvFn recv) {
  if (addr.family != base::IpAddress::kV4) return absl::InvalidArgumentError("stack: UDP address must be IPv4");
  std::unique_ptr<UdpEndpoint> e(new UdpEndpoint(stack, std::move(recv)));
  e->pcb_ = udp_new_ip_type(IPADDR_TYPE_V4);
  if (!e->pcb_) return absl::ResourceExhaustedError("stack: out of UDP control blocks");
  ip_addr_t ip;
  IP_ADDR4(&ip, addr.bytes[0], addr.bytes[1], addr.bytes[2], addr.bytes[3]);
  if (udp_bind(e->pcb_, &ip, port) != ERR_OK) {
    udp_remove(e->pcb_);
    e->pcb_ = nullptr;
    return absl::AlreadyExistsError(absl::StrCat("stack: UDP ", addr.ToString(), ":", port, " is already in use"));
  }
  udp_recv(e->pcb_, &LwipUdpCallbacks::Recv, e.get());
  e->address_ = addr;
  return e;
}

UdpEndpoint::~UdpEndpoint() {
  if (pcb_) udp_remove(pcb_);
}

bool UdpEndpoint::SendTo(base::ByteSpan data, const base::IpAddress& to, uint16_t to_port) {
  if (!pcb_ || data.size() > 65507) return false;
  struct pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(data.size()), PBUF_RAM);
  if (!p) return false;
  pbuf_take(p, data.data(), static_cast<u16_t>(data.size()));
  ip_addr_t dst;
  IP_ADDR4(&dst, to.bytes[0], to.bytes[1], to.bytes[2], to.bytes[3]);
  err_t err = ERR_OK;
  stack_.AsAddress(address_, [&] { err = udp_sendto(pcb_, p, &dst, to_port); });
  pbuf_free(p);
  stack_.AfterActivity();
  return err == ERR_OK;
}

}  // namespace p2proxy::stack
