// udp_endpoint.h: a UDP port of the userspace stack (a UDP resource's address and port).
#ifndef P2PROXY_STACK_UDP_ENDPOINT_H_
#define P2PROXY_STACK_UDP_ENDPOINT_H_

#include <memory>

#include "stack/netstack.h"

struct udp_pcb;

namespace p2proxy::stack {

class UdpEndpoint {
 public:
  static absl::StatusOr<std::unique_ptr<UdpEndpoint>> Create(NetStack& stack, const base::IpAddress& addr,
                                                             uint16_t port, NetStack::RecvFn recv);
  ~UdpEndpoint();
  // SendTo sends one datagram from this endpoint's address and port. False if lwIP had no
  // buffer or no route (dropped).
  bool SendTo(base::ByteSpan data, const base::IpAddress& to, uint16_t to_port);

 private:
  friend struct LwipUdpCallbacks;
  UdpEndpoint(NetStack& stack, NetStack::RecvFn recv) : stack_(stack), recv_(std::move(recv)) {}
  NetStack& stack_;
  NetStack::RecvFn recv_;
  struct udp_pcb* pcb_ = nullptr;
  base::IpAddress address_;
};

}  // namespace p2proxy::stack

#endif  // P2PROXY_STACK_UDP_ENDPOINT_H_
