// tun.h: a Linux TUN device on the loop: IP packets in and out of the kernel in batches, and the
// interface's configuration (MTU, addresses, up/down, routes) without shelling out to `ip`.
//
// Lifetime of the fd: the device polls its fd with a uv_poll_t. libuv says an fd must not be
// closed while an active poll handle watches it, and that it may be closed at once after
// uv_poll_stop() (which on Linux takes the fd out of epoll and discards its pending events).
// So the destructor stops the poll handle, starts closing it (UvHandle frees its memory in
// the close callback, later), and only then closes the fd. Closing the fd deletes the interface
// (the device is never made persistent), with its addresses and routes.
#ifndef P2PROXY_NET_TUN_H_
#define P2PROXY_NET_TUN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/bytes.h"
#include "base/ip_prefix.h"
#include "base/log.h"
#include "net/handle.h"
#include "net/loop.h"

namespace p2proxy::net {

// TunCounters: "rx" is what the kernel sent into the TUN (read by us), "tx" what we wrote for
// the kernel to receive.
struct TunCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_dropped = 0;  // the kernel did not take the packet (queue full, malformed, down)
  uint64_t rx_errors = 0;   // a read or poll failed
};

class TunDevice final : public DeferredDeletable {
 public:
  // PacketCallback gets the packets of one wakeup, each a whole IPv4 or IPv6 packet (no
  // packet-info header). The spans point into a buffer the device owns and are valid only
  // during the call. The callback must not destroy the device; hand it to Loop::DeferDelete.
  using PacketCallback = absl::AnyInvocable<void(absl::Span<const base::ByteSpan> packets)>;

  // kMaxPacket is the largest packet read or written: an IPv4 total length is 16 bits and a
  // TUN's MTU is at most 65535, so a read of this size never truncates.
  static constexpr size_t kMaxPacket = 65535;

  struct Options {
    // batch is the most packets read per wakeup (then the loop gets a turn). The receive
    // buffer holds |batch| packets of 2 KiB plus one of kMaxPacket; with larger packets a
    // wakeup reads fewer, never truncated ones.
    size_t batch = 64;
  };

  // Open creates (or attaches to) the TUN interface |name| and starts reading into |cb|. |name|
  // may be a template such as "p2p%d" (the kernel picks the number; name() tells which) or
  // empty ("tun%d"); at most 15 bytes. Needs /dev/net/tun and CAP_NET_ADMIN; the errors say
  // what is missing. The device must be destroyed before |loop|.
  static absl::StatusOr<std::unique_ptr<TunDevice>> Open(Loop& loop, const std::string& name,
                                                         PacketCallback cb, Options options);
  static absl::StatusOr<std::unique_ptr<TunDevice>> Open(Loop& loop, const std::string& name,
                                                         PacketCallback cb) {
    return Open(loop, name, std::move(cb), Options());
  }
  ~TunDevice() override;
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  // Write hands one IP packet to the kernel, as if the interface had received it. A TUN is
  // lossy like a NIC: if the kernel does not take the packet (its queue is full, the
  // interface is down, the packet is empty, too big or not IPv4/IPv6) it is dropped and
  // counted, and Write returns false.
  bool Write(base::ByteSpan packet);
  // WriteBatch writes each packet as Write does and returns how many the kernel took.
  size_t WriteBatch(absl::Span<const base::ByteSpan> packets);

  // Configuration. These block briefly on the kernel (ioctl, netlink); call them at setup, not
  // per packet. Each needs CAP_NET_ADMIN and says so when it is missing.

  // SetMtu sets the interface MTU (68 to 65535; IPv6 needs at least 1280).
  absl::Status SetMtu(int mtu);
  // AddAddress gives the interface |address| with |prefix_length|, e.g. 10.77.0.1 and 24 (an
  // IpPrefix cannot carry this: it keeps host bits zero). The kernel adds the connected route
  // for the prefix once the interface is up. IPv4 goes through SIOCSIFADDR/SIOCSIFNETMASK,
  // which set the interface's primary IPv4 address: a second IPv4 call replaces the first.
  // IPv6 goes through netlink (RTM_NEWADDR, no duplicate address detection) and adds; an
  // address already there gives AlreadyExists.
  absl::Status AddAddress(const base::IpAddress& address, int prefix_length);
  // AddHostAddress adds |address| as one more address (a /32 or /128 of host scope, through
  // netlink), for a local service such as the resolver at 100.96.128.1: it is never chosen as
  // the source of outgoing packets and leaves the primary address alone.
  absl::Status AddHostAddress(const base::IpAddress& address);
  // SetUp brings the interface up (or down).
  absl::Status SetUp(bool up);
  // AddRoute routes |prefix| (IPv4 or IPv6) into this interface in the main table (a device
  // route, scope link for IPv4), through netlink. The interface must be up (FailedPrecondition
  // otherwise); the same route twice gives AlreadyExists.
  absl::Status AddRoute(const base::IpPrefix& prefix);
  // RemoveRoute removes such a route (`ip route del PREFIX dev NAME`); NotFound if there is none.
  absl::Status RemoveRoute(const base::IpPrefix& prefix);

  // name is the interface's name as the kernel chose it ("p2p0" for "p2p%d").
  const std::string& name() const { return name_; }
  // index is the interface index, looked up once at Open.
  int index() const { return index_; }
  const TunCounters& counters() const { return counters_; }

 private:
  TunDevice(int fd, std::string name, PacketCallback cb, Options options);
  absl::Status ChangeRoute(const base::IpPrefix& prefix, bool add);
  static void OnPoll(uv_poll_t* h, int status, int events);
  void ReadBatch();
  void StopReading();

  int fd_;
  std::string name_;
  int index_ = 0;
  PacketCallback cb_;
  Options options_;
  UvHandle<uv_poll_t> poll_;
  bool poll_initialized_ = false;  // uv_poll_init succeeded: uv_poll_stop is valid
  // rx_buffer_ is not zero-filled: pages are touched only as packets land in them.
  std::unique_ptr<uint8_t[]> rx_buffer_;
  size_t rx_buffer_len_ = 0;
  std::vector<base::ByteSpan> rx_packets_;  // sized |batch| once; reused every wakeup
  TunCounters counters_;
  base::LogRateLimiter write_log_limiter_;  // per device: loops (and devices) live on many threads
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_TUN_H_
