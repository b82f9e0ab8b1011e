// netstack.h: a userspace TCP/IP stack (lwIP, NO_SYS) on the libuv loop, behind one
// point-to-point netif whose packets come from and go to the tunnel. It answers ICMP echo on the
// node address, accepts TCP and UDP for any address inside the prefixes it serves (the site's
// resource addresses), and exposes connections as net::Stream. It listens on no host socket:
// everything it receives arrived through the tunnel (invariant I1).
//
// lwIP keeps global state, so a process has at most one NetStack.
#ifndef P2PROXY_STACK_NETSTACK_H_
#define P2PROXY_STACK_NETSTACK_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "base/ip_prefix.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/timer.h"

struct netif;
struct pbuf;
struct tcp_pcb;

namespace p2proxy::stack {

struct StackCounters {
  uint64_t packets_in = 0;
  uint64_t packets_out = 0;
  uint64_t dropped_malformed = 0;    // not an IPv4 packet we can parse
  uint64_t dropped_not_served = 0;   // destination outside the node address and served prefixes
  uint64_t dropped_no_buffer = 0;    // lwIP's pbuf pool was empty
  uint64_t tcp_rst_sent = 0;         // resets sent: refused connections (no listener) and aborts
  uint64_t tcp_accepted = 0;
  // From lwIP's own statistics (read by Counters()).
  uint64_t tcp_segments_sent = 0;
  uint64_t tcp_segments_dropped = 0;
};

class TcpListener;
class UdpEndpoint;

class NetStack {
 public:
  // OutputFn receives the packets the stack sends, in batches; views valid only during the call.
  using OutputFn = absl::AnyInvocable<void(absl::Span<const base::ByteSpan> packets)>;

  // Create starts lwIP with |node_address| on its netif. Fails if a NetStack already exists.
  static absl::StatusOr<std::unique_ptr<NetStack>> Create(net::Loop& loop,
                                                          const base::IpAddress& node_address,
                                                          size_t mtu, OutputFn output);
  ~NetStack();
  NetStack(const NetStack&) = delete;
  NetStack& operator=(const NetStack&) = delete;

  // Serve makes the stack accept packets for every address in |prefix| (IPv4).
  void Serve(const base::IpPrefix& prefix);
  // Unserve undoes one Serve of |prefix| (several resources may share an address, each serving
  // it once); false if it was not served.
  bool Unserve(const base::IpPrefix& prefix);

  // Input hands the stack a batch of IP packets that arrived through the tunnel.
  void Input(absl::Span<const base::ByteSpan> packets);

  // AcceptFn receives each new connection; the callee owns it.
  using AcceptFn = absl::AnyInvocable<void(std::unique_ptr<net::Stream> conn,
                                           const base::IpAddress& peer, uint16_t peer_port)>;
  // ListenTcp accepts connections to |addr|:|port| (addr must be served, or the node address).
  absl::StatusOr<std::unique_ptr<TcpListener>> ListenTcp(const base::IpAddress& addr, uint16_t port,
                                                         AcceptFn accept);
  // ConnectTcp opens a connection from the node address to |addr|:|port| through the tunnel.
  using ConnectFn = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<net::Stream>>)>;
  void ConnectTcp(const base::IpAddress& addr, uint16_t port, ConnectFn done);

  // RecvFn gets each datagram for a bound UDP endpoint, with its source.
  using RecvFn = absl::AnyInvocable<void(base::ByteSpan data, const base::IpAddress& from,
                                         uint16_t from_port)>;
  absl::StatusOr<std::unique_ptr<UdpEndpoint>> BindUdp(const base::IpAddress& addr, uint16_t port,
                                                       RecvFn recv);

  // counters includes lwIP's TCP statistics as of now.
  const StackCounters& counters();
  const base::IpAddress& node_address() const { return node_address_; }
  net::Loop& loop() { return loop_; }

  // AfterActivity sends what lwIP queued and re-arms lwIP's timer; streams call it after
  // writing, the stack after input and timers.
  void AfterActivity();
  void CountAccepted();
  // AsAddress runs |fn| with the netif answering to |addr| (a served address): lwIP's UDP
  // refuses to send from an address the netif does not hold at that moment.
  void AsAddress(const base::IpAddress& addr, absl::FunctionRef<void()> fn);

 private:
  NetStack(net::Loop& loop, const base::IpAddress& node_address, size_t mtu, OutputFn output);
  friend struct NetStackLwip;  // lwIP's C callbacks, in netstack.cc
  bool Serves(uint32_t addr_host_order) const;
  void FlushOutput();
  void ArmTimer();

  net::Loop& loop_;
  base::IpAddress node_address_;
  size_t mtu_;
  OutputFn output_;
  std::unique_ptr<struct netif> netif_;
  std::vector<base::IpPrefix> served_;
  net::Timer timer_;
  StackCounters counters_;
  // Packets lwIP sent, waiting for the end of the current batch.
  static constexpr size_t kBatchSlots = 64;
  static constexpr size_t kSlotSize = 1536;
  std::vector<uint8_t> out_arena_;
  std::vector<base::ByteSpan> out_batch_;
};

}  // namespace p2proxy::stack

#endif  // P2PROXY_STACK_NETSTACK_H_
