// udp_bridge.h: a UDP flow of the public API's Client::DialUdp. The caller gets one end of an
// AF_UNIX SOCK_SEQPACKET socketpair (message boundaries kept, and an end the library can see
// closed); each message written there becomes one datagram from an overlay UDP socket to the
// resource, and each datagram from the resource one message to read. Datagrams from anyone
// else are dropped. Loop-thread only.
#ifndef P2PROXY_API_UDP_BRIDGE_H_
#define P2PROXY_API_UDP_BRIDGE_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "base/address.h"
#include "client/overlay.h"
#include "net/handle.h"
#include "net/loop.h"

namespace p2proxy::api {

class UdpBridge {
 public:
  struct Counters {
    uint64_t to_resource = 0;
    uint64_t from_resource = 0;
    uint64_t dropped = 0;  // the caller's queue was full, or the overlay had no room
  };
  // Create makes the pair and the overlay socket; *user_fd is the caller's end. |on_end| runs
  // (on the loop) when the caller closed its end; the owner then destroys the bridge.
  static absl::StatusOr<std::unique_ptr<UdpBridge>> Create(net::Loop& loop, client::Overlay& overlay,
                                                          const base::IpAddress& to, uint16_t port, int* user_fd,
                                                          std::function<void(UdpBridge*)> on_end);
  ~UdpBridge();
  UdpBridge(const UdpBridge&) = delete;
  UdpBridge& operator=(const UdpBridge&) = delete;
  const Counters& counters() const { return counters_; }

 private:
  UdpBridge() = default;
  static void OnPoll(uv_poll_t* h, int status, int events);
  void FromCaller();

  int fd_ = -1;  // our end, non-blocking
  base::IpAddress to_;
  uint16_t port_ = 0;
  std::unique_ptr<client::OverlayUdp> udp_;
  net::UvHandle<uv_poll_t> poll_;
  bool polling_ = false;
  bool ended_ = false;
  std::function<void(UdpBridge*)> on_end_;
  Counters counters_;
};

}  // namespace p2proxy::api

#endif  // P2PROXY_API_UDP_BRIDGE_H_
