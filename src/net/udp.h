// udp.h: a UDP socket on the loop. Receives in batches (recvmmsg through libuv) into one buffer
// the socket owns, so the receive path allocates nothing per datagram.
#ifndef P2PROXY_NET_UDP_H_
#define P2PROXY_NET_UDP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "base/address.h"
#include "net/handle.h"
#include "net/loop.h"

namespace p2proxy::net {

using base::SocketAddress;

struct UdpCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_errors = 0;
  uint64_t rx_truncated = 0;  // datagrams larger than the receive slot: dropped
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_dropped = 0;    // the kernel's buffer was full or the send failed
};

class UdpSocket {
 public:
  // ReceiveCallback gets each batch of datagrams that one recvmmsg returned (a batch of one
  // without batching); the views are valid only during the call. The callback may not destroy
  // the socket (hand it to Loop::DeferDelete instead).
  using ReceiveCallback = absl::AnyInvocable<void(absl::Span<const base::Datagram> batch)>;

  struct Options {
    size_t max_datagram = 65536;  // receive slot size (always 64 KiB when batch > 1)
    size_t batch = 32;            // datagrams per recvmmsg
    int rcvbuf = 4 << 20;         // SO_RCVBUF request (0: leave the kernel's default)
    int sndbuf = 4 << 20;         // SO_SNDBUF request
  };

  // Bind opens a socket bound to |addr| (port 0 picks one) and starts receiving into |cb|.
  static absl::StatusOr<std::unique_ptr<UdpSocket>> Bind(Loop& loop, const SocketAddress& addr,
                                                         ReceiveCallback cb, Options options);
  static absl::StatusOr<std::unique_ptr<UdpSocket>> Bind(Loop& loop, const SocketAddress& addr,
                                                         ReceiveCallback cb) {
    return Bind(loop, addr, std::move(cb), Options());
  }
  ~UdpSocket();

  // Send sends one datagram now. UDP is lossy: if the kernel cannot take it, it is dropped and
  // counted, and Send returns false.
  bool Send(const SocketAddress& to, base::ByteSpan data);
  // SendBatch sends datagrams (each to its addr) with as few sendmmsg calls as it takes.
  // Returns how many the kernel took; the rest are dropped and counted.
  size_t SendBatch(absl::Span<const base::Datagram> batch);

  SocketAddress local_address() const;
  const UdpCounters& counters() const { return counters_; }

 private:
  UdpSocket(ReceiveCallback cb, Options options);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                     unsigned flags);

  UvHandle<uv_udp_t> udp_;
  ReceiveCallback cb_;
  Options options_;
  void DeliverBatch();

  std::vector<uint8_t> rx_buffer_;
  std::vector<base::Datagram> rx_batch_;  // chunks of the current recvmmsg, delivered at its end
  UdpCounters counters_;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_UDP_H_
