// TunDevice against the real kernel. Each test that creates an interface first moves into a
// private, empty network namespace, so it never touches the host's network; without root (or
// without /dev/net/tun) those tests warn and pass.
#include "net/tun.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/bytes.h"
#include "base/ip_prefix.h"

using namespace p2proxy;
using namespace p2proxy::net;
using base::IpAddress;

#define REQUIRE_OK(expr)                    \
  do {                                      \
    const absl::Status require_ok_ = (expr); \
    INFO(require_ok_.ToString());           \
    REQUIRE(require_ok_.ok());              \
  } while (0)

namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;
const absl::Duration kWait = absl::Seconds(5);

// PrivateNetns moves this thread into a new, empty network namespace and back into the old one
// when destroyed, so the interfaces a test creates vanish with it and nothing leaks into other
// tests, even when all tests run in one process. skip_reason() is non-empty when this machine
// cannot do that.
class PrivateNetns {
 public:
  PrivateNetns() {
    if (::geteuid() != 0) {
      skip_reason_ =
          "skipped: TUN tests need root (they create interfaces in a private network "
          "namespace); run the tests as root to include them";
      return;
    }
    const int probe = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (probe < 0) {
      skip_reason_ = absl::StrCat("skipped: cannot open /dev/net/tun (", std::strerror(errno),
                                  "); load the tun module or pass the device into the container");
      return;
    }
    ::close(probe);
    old_netns_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (old_netns_ < 0) {
      skip_reason_ = absl::StrCat("skipped: cannot open /proc/thread-self/ns/net (",
                                  std::strerror(errno), ")");
      return;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
      skip_reason_ = absl::StrCat("skipped: unshare(CLONE_NEWNET) failed (", std::strerror(errno),
                                  "); a container may need CAP_SYS_ADMIN");
      ::close(old_netns_);
      old_netns_ = -1;
    }
  }
  ~PrivateNetns() {
    if (old_netns_ < 0) return;
    if (::setns(old_netns_, CLONE_NEWNET) != 0) {
      // Later tests in this process would run in the wrong namespace: say so loudly.
      FAIL_CHECK("setns back to the original network namespace failed: " << std::strerror(errno));
    }
    ::close(old_netns_);
  }
  PrivateNetns(const PrivateNetns&) = delete;
  PrivateNetns& operator=(const PrivateNetns&) = delete;

  const std::string& skip_reason() const { return skip_reason_; }

 private:
  int old_netns_ = -1;
  std::string skip_reason_;
};

// Received copies every packet the device delivers (the spans die with the callback) and
// remembers how the packets were batched.
struct Received {
  std::vector<std::vector<uint8_t>> packets;
  std::vector<size_t> batch_sizes;

  TunDevice::PacketCallback Callback() {
    return [this](absl::Span<const base::ByteSpan> batch) {
      batch_sizes.push_back(batch.size());
      for (const base::ByteSpan& p : batch) packets.emplace_back(p.begin(), p.end());
    };
  }
};

// InternetChecksum is RFC 1071's one's-complement sum; over data that carries a correct
// checksum it gives 0.
uint16_t InternetChecksum(base::ByteSpan data) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < data.size(); i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (data.size() % 2 != 0) sum += uint32_t{data.back()} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

struct IpPacket {
  IpAddress src;
  IpAddress dst;
  uint8_t protocol = 0;  // IPv4 protocol or IPv6 next header
  base::ByteSpan payload;
};

// ParseIp reads an IPv4 header (with a correct checksum) or a fixed IPv6 header, strictly:
// the stated length must be the packet's length. False for anything else.
bool ParseIp(base::ByteSpan packet, IpPacket* out) {
  base::ByteReader r(packet);
  uint8_t first;
  if (packet.empty()) return false;
  first = packet[0];
  base::ByteSpan src, dst;
  if (first >> 4 == 4) {
    const size_t header_len = size_t{first & 0x0fu} * 4;
    uint16_t total_len;
    if (header_len < 20 || packet.size() < header_len ||
        InternetChecksum(packet.subspan(0, header_len)) != 0 || !r.Skip(2) ||
        !r.ReadU16(&total_len) || total_len != packet.size() || !r.Skip(5) ||
        !r.ReadU8(&out->protocol) || !r.Skip(2) || !r.ReadBytes(4, &src) ||
        !r.ReadBytes(4, &dst) || !r.Skip(header_len - 20)) {
      return false;
    }
  } else if (first >> 4 == 6) {
    uint16_t payload_len;
    if (!r.Skip(4) || !r.ReadU16(&payload_len) || payload_len + 40u != packet.size() ||
        !r.ReadU8(&out->protocol) || !r.Skip(1) || !r.ReadBytes(16, &src) ||
        !r.ReadBytes(16, &dst)) {
      return false;
    }
  } else {
    return false;
  }
  out->src = IpAddress::FromBytes(src);
  out->dst = IpAddress::FromBytes(dst);
  out->payload = r.rest();
  return true;
}

struct UdpDatagram {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  std::string data;
};

// FindUdp looks among |received| for a UDP datagram from |src| to |dst|; false if none yet.
bool FindUdp(const Received& received, const IpAddress& src, const IpAddress& dst,
             UdpDatagram* out) {
  for (const auto& bytes : received.packets) {
    IpPacket ip;
    if (!ParseIp(bytes, &ip) || ip.protocol != kProtoUdp || ip.src != src || ip.dst != dst) {
      continue;
    }
    base::ByteReader r(ip.payload);
    uint16_t len;
    base::ByteSpan data;
    if (!r.ReadU16(&out->src_port) || !r.ReadU16(&out->dst_port) || !r.ReadU16(&len) ||
        len != ip.payload.size() || !r.Skip(2) || !r.ReadBytes(len - 8u, &data)) {
      continue;
    }
    out->data.assign(data.begin(), data.end());
    return true;
  }
  return false;
}

// UdpSender is a plain kernel UDP socket, the way any program on the host would send.
class UdpSender {
 public:
  explicit UdpSender(int family)
      : fd_(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)), error_(fd_ < 0 ? errno : 0) {}
  ~UdpSender() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpSender(const UdpSender&) = delete;
  UdpSender& operator=(const UdpSender&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // error says why the socket could not be made.
  std::string error() const { return std::strerror(error_); }

  // SendTo sends |data| to |ip|:|port|; the kernel picks the source address and port.
  void SendTo(const IpAddress& ip, uint16_t port, absl::string_view data) {
    sockaddr_storage ss;
    std::memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (ip.family == IpAddress::kV4) {
      sockaddr_in sin;
      std::memset(&sin, 0, sizeof(sin));
      sin.sin_family = AF_INET;
      sin.sin_port = htons(port);
      std::memcpy(&sin.sin_addr, ip.bytes.data(), 4);
      std::memcpy(&ss, &sin, sizeof(sin));
      len = sizeof(sin);
    } else {
      sockaddr_in6 sin6;
      std::memset(&sin6, 0, sizeof(sin6));
      sin6.sin6_family = AF_INET6;
      sin6.sin6_port = htons(port);
      std::memcpy(&sin6.sin6_addr, ip.bytes.data(), 16);
      std::memcpy(&ss, &sin6, sizeof(sin6));
      len = sizeof(sin6);
    }
    const ssize_t n =
        ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&ss), len);
    const int err = n < 0 ? errno : 0;
    INFO("sendto " << ip.ToString() << ": " << (n < 0 ? std::strerror(err) : "ok"));
    REQUIRE(n == static_cast<ssize_t>(data.size()));
  }

  // local_port is the port the kernel bound on the first send.
  uint16_t local_port() const {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  }

 private:
  int fd_;
  int error_;
};

// BuildIcmpEcho builds an IPv4 ICMP echo request from |src| to |dst|, both checksums right.
std::vector<uint8_t> BuildIcmpEcho(const IpAddress& src, const IpAddress& dst, uint16_t id,
                                   uint16_t seq, absl::string_view data) {
  base::ByteWriter icmp;
  REQUIRE(icmp.AddU8(8));  // echo request
  REQUIRE(icmp.AddU8(0));
  REQUIRE(icmp.AddU16(0));  // checksum, below
  REQUIRE(icmp.AddU16(id));
  REQUIRE(icmp.AddU16(seq));
  REQUIRE(icmp.AddBytes(
      base::ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size())));
  std::vector<uint8_t> icmp_bytes = icmp.Take();
  const uint16_t icmp_sum = InternetChecksum(icmp_bytes);
  icmp_bytes[2] = static_cast<uint8_t>(icmp_sum >> 8);
  icmp_bytes[3] = static_cast<uint8_t>(icmp_sum);

  base::ByteWriter ip;
  REQUIRE(ip.AddU8(0x45));  // version 4, 5 words of header
  REQUIRE(ip.AddU8(0));
  REQUIRE(ip.AddU16(static_cast<uint16_t>(20 + icmp_bytes.size())));
  REQUIRE(ip.AddU16(0x1234));  // identification
  REQUIRE(ip.AddU16(0x4000));  // don't fragment
  REQUIRE(ip.AddU8(64));       // TTL
  REQUIRE(ip.AddU8(kProtoIcmp));
  REQUIRE(ip.AddU16(0));  // checksum, below
  REQUIRE(ip.AddBytes(src.span()));
  REQUIRE(ip.AddBytes(dst.span()));
  std::vector<uint8_t> packet = ip.Take();
  const uint16_t ip_sum = InternetChecksum(packet);
  packet[10] = static_cast<uint8_t>(ip_sum >> 8);
  packet[11] = static_cast<uint8_t>(ip_sum);
  packet.insert(packet.end(), icmp_bytes.begin(), icmp_bytes.end());
  return packet;
}

// FindEchoReply looks for the kernel's echo reply from |src| to |dst| with |id| and |seq|; it
// checks the ICMP checksum and copies the echoed data to |data|.
bool FindEchoReply(const Received& received, const IpAddress& src, const IpAddress& dst,
                   uint16_t id, uint16_t seq, std::string* data) {
  for (const auto& bytes : received.packets) {
    IpPacket ip;
    if (!ParseIp(bytes, &ip) || ip.protocol != kProtoIcmp || ip.src != src || ip.dst != dst) {
      continue;
    }
    base::ByteReader r(ip.payload);
    uint8_t type, code;
    uint16_t got_id, got_seq;
    if (InternetChecksum(ip.payload) != 0 || !r.ReadU8(&type) || type != 0 || !r.ReadU8(&code) ||
        code != 0 || !r.Skip(2) || !r.ReadU16(&got_id) || got_id != id ||
        !r.ReadU16(&got_seq) || got_seq != seq) {
      continue;
    }
    data->assign(r.rest().begin(), r.rest().end());
    return true;
  }
  return false;
}

const IpAddress kLocal = IpAddress::V4(10, 77, 0, 1);
const IpAddress kPeer = IpAddress::V4(10, 77, 0, 2);

// OpenConfigured opens "p2ptest%d" as the tests use it: MTU 1420, 10.77.0.1/24, up.
std::unique_ptr<TunDevice> OpenConfigured(Loop& loop, Received* received,
                                          TunDevice::Options options = TunDevice::Options()) {
  auto opened = TunDevice::Open(loop, "p2ptest%d", received->Callback(), options);
  INFO((opened.ok() ? std::string("opened") : opened.status().ToString()));
  REQUIRE(opened.ok());
  std::unique_ptr<TunDevice> dev = std::move(*opened);
  REQUIRE(absl::string_view(dev->name()).substr(0, 7) == "p2ptest");
  REQUIRE(dev->name().find('%') == std::string::npos);
  REQUIRE(dev->index() > 0);
  REQUIRE_OK(dev->SetMtu(1420));
  REQUIRE_OK(dev->AddAddress(kLocal, 24));
  REQUIRE_OK(dev->SetUp(true));
  return dev;
}

}  // namespace

TEST_CASE("a TUN name longer than 15 bytes is refused before anything is opened") {
  Loop loop;
  auto opened =
      TunDevice::Open(loop, "p2p-name-too-long%d", [](absl::Span<const base::ByteSpan>) {});
  REQUIRE_FALSE(opened.ok());
  REQUIRE(opened.status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(opened.status().message().find("at most 15") != absl::string_view::npos);
}

TEST_CASE("a UDP datagram the kernel routes to the TUN arrives as an IPv4 packet") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  Loop loop;
  Received received;
  auto dev = OpenConfigured(loop, &received);

  UdpSender sender(AF_INET);
  REQUIRE(sender.ok());
  sender.SendTo(kPeer, 9999, "hello through the tun");
  UdpDatagram got;
  // Other packets (IPv6 router solicitations, MLD reports) may come first; FindUdp skips them.
  REQUIRE(loop.RunUntil([&] { return FindUdp(received, kLocal, kPeer, &got); }, kWait));
  REQUIRE(got.data == "hello through the tun");
  REQUIRE(got.dst_port == 9999);
  REQUIRE(got.src_port == sender.local_port());
}

TEST_CASE("the kernel answers an ICMP echo request written into the TUN") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  Loop loop;
  Received received;
  auto dev = OpenConfigured(loop, &received);

  const std::vector<uint8_t> echo = BuildIcmpEcho(kPeer, kLocal, 0x5150, 7, "ping payload");
  REQUIRE(dev->Write(echo));
  std::string echoed;
  REQUIRE(loop.RunUntil(
      [&] { return FindEchoReply(received, kLocal, kPeer, 0x5150, 7, &echoed); }, kWait));
  REQUIRE(echoed == "ping payload");
}

TEST_CASE("AddRoute sends a whole prefix into the TUN, RemoveRoute takes it away") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  Loop loop;
  Received received;
  const base::IpPrefix routed = *base::IpPrefix::Parse("10.88.0.0/16");

  // The kernel refuses a device route through an interface that is down; the error says so.
  auto down = TunDevice::Open(loop, "p2pdown%d", [](absl::Span<const base::ByteSpan>) {});
  REQUIRE(down.ok());
  const absl::Status refused = (*down)->AddRoute(routed);
  INFO(refused.ToString());
  REQUIRE(refused.code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(refused.message().find("SetUp") != absl::string_view::npos);

  auto dev = OpenConfigured(loop, &received);
  REQUIRE_OK(dev->AddRoute(routed));
  REQUIRE(dev->AddRoute(routed).code() == absl::StatusCode::kAlreadyExists);

  UdpSender sender(AF_INET);
  REQUIRE(sender.ok());
  const IpAddress far = IpAddress::V4(10, 88, 1, 1);
  sender.SendTo(far, 4242, "routed");
  UdpDatagram got;
  REQUIRE(loop.RunUntil([&] { return FindUdp(received, kLocal, far, &got); }, kWait));
  REQUIRE(got.data == "routed");
  REQUIRE(got.dst_port == 4242);

  // RemoveRoute takes it away: a second removal finds nothing, and adding it again works (an
  // existing route would give AlreadyExists).
  REQUIRE_OK(dev->RemoveRoute(routed));
  REQUIRE(dev->RemoveRoute(routed).code() == absl::StatusCode::kNotFound);
  REQUIRE_OK(dev->AddRoute(routed));
}

TEST_CASE("an IPv6 address and route set through netlink carry traffic into the TUN") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  UdpSender sender(AF_INET6);
  if (!sender.ok()) {
    WARN("skipped: this kernel has no IPv6 (" << sender.error() << ")");
    return;
  }
  Loop loop;
  Received received;
  auto dev = OpenConfigured(loop, &received);
  const IpAddress local6 = *IpAddress::Parse("fd00:77::1");
  REQUIRE_OK(dev->AddAddress(local6, 64));
  REQUIRE(dev->AddAddress(local6, 64).code() == absl::StatusCode::kAlreadyExists);
  REQUIRE_OK(dev->AddRoute(*base::IpPrefix::Parse("fd00:88::/32")));

  const IpAddress on_link = *IpAddress::Parse("fd00:77::2");
  const IpAddress routed = *IpAddress::Parse("fd00:88::1");
  sender.SendTo(on_link, 9999, "v6 on link");
  sender.SendTo(routed, 9999, "v6 routed");
  UdpDatagram got_on_link, got_routed;
  REQUIRE(loop.RunUntil(
      [&] {
        return FindUdp(received, local6, on_link, &got_on_link) &&
               FindUdp(received, local6, routed, &got_routed);
      },
      kWait));
  REQUIRE(got_on_link.data == "v6 on link");
  REQUIRE(got_routed.data == "v6 routed");
}

TEST_CASE("packets queued while the loop is busy arrive in batches no larger than asked") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  Loop loop;
  Received received;
  TunDevice::Options options;
  options.batch = 16;
  auto dev = OpenConfigured(loop, &received, options);

  // All 40 are queued in the kernel before the loop runs, so the first wakeup finds a full batch.
  constexpr int kCount = 40;
  UdpSender sender(AF_INET);
  REQUIRE(sender.ok());
  for (int i = 0; i < kCount; ++i) sender.SendTo(kPeer, 9999, absl::StrCat("datagram ", i));
  auto count_udp = [&] {
    int n = 0;
    for (const auto& bytes : received.packets) {
      IpPacket ip;
      if (ParseIp(bytes, &ip) && ip.protocol == kProtoUdp && ip.dst == kPeer) ++n;
    }
    return n;
  };
  REQUIRE(loop.RunUntil([&] { return count_udp() == kCount; }, kWait));
  size_t largest = 0;
  for (size_t n : received.batch_sizes) largest = std::max(largest, n);
  REQUIRE(largest == 16);
}

TEST_CASE("TUN counters move, and a packet the kernel refuses is dropped and counted") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  Loop loop;
  Received received;
  auto dev = OpenConfigured(loop, &received);
  REQUIRE(dev->counters().tx_packets == 0);

  // Receive side: every packet delivered is counted, with its bytes.
  UdpSender sender(AF_INET);
  REQUIRE(sender.ok());
  sender.SendTo(kPeer, 9999, "count me");
  UdpDatagram got;
  REQUIRE(loop.RunUntil([&] { return FindUdp(received, kLocal, kPeer, &got); }, kWait));
  uint64_t bytes = 0;
  for (const auto& p : received.packets) bytes += p.size();
  REQUIRE(dev->counters().rx_packets == received.packets.size());
  REQUIRE(dev->counters().rx_bytes == bytes);
  REQUIRE(dev->counters().rx_errors == 0);

  // Send side, through WriteBatch: two echo requests and, between them, a packet whose
  // version nibble is 7, which the kernel rejects (EINVAL); an empty packet never gets there.
  const std::vector<uint8_t> first = BuildIcmpEcho(kPeer, kLocal, 1, 1, "first");
  const std::vector<uint8_t> second = BuildIcmpEcho(kPeer, kLocal, 1, 2, "second");
  std::vector<uint8_t> not_ip = first;
  not_ip[0] = 0x75;
  const base::ByteSpan batch[] = {first, not_ip, second, base::ByteSpan()};
  REQUIRE(dev->WriteBatch(batch) == 2);
  REQUIRE(dev->counters().tx_packets == 2);
  REQUIRE(dev->counters().tx_bytes == first.size() + second.size());
  REQUIRE(dev->counters().tx_dropped == 2);

  std::string echoed;
  REQUIRE(loop.RunUntil(
      [&] {
        return FindEchoReply(received, kLocal, kPeer, 1, 1, &echoed) &&
               FindEchoReply(received, kLocal, kPeer, 1, 2, &echoed);
      },
      kWait));
  REQUIRE(dev->counters().rx_packets == received.packets.size());

  // A down interface takes nothing: the write is dropped and counted.
  REQUIRE_OK(dev->SetUp(false));
  REQUIRE_FALSE(dev->Write(first));
  REQUIRE(dev->counters().tx_dropped == 3);
}

// Regression: the client's resolver address (100.96.128.1) once went on through SIOCSIFADDR,
// which replaced the interface's own address, so tunnel traffic left from the resolver's address
// and the site dropped it. A host address is added beside the primary and is never a source.
TEST_CASE("a host address joins the primary one and is never the source of outgoing packets") {
  PrivateNetns netns;
  if (!netns.skip_reason().empty()) {
    WARN(netns.skip_reason());
    return;
  }
  Loop loop;
  Received received;
  auto dev = OpenConfigured(loop, &received);
  const IpAddress host = IpAddress::V4(10, 78, 0, 53);
  REQUIRE_OK(dev->AddHostAddress(host));
  REQUIRE(dev->AddHostAddress(host).code() == absl::StatusCode::kAlreadyExists);
  // The host address is bindable locally.
  UdpSender bound(AF_INET);
  REQUIRE(bound.ok());
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  std::memcpy(&sin.sin_addr, host.span().data(), 4);
  REQUIRE(bind(bound.fd(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0);
  // Traffic to a peer still leaves from the primary address.
  UdpSender sender(AF_INET);
  REQUIRE(sender.ok());
  sender.SendTo(kPeer, 9999, "from the primary address");
  UdpDatagram got;
  REQUIRE(loop.RunUntil([&] { return FindUdp(received, kLocal, kPeer, &got); }, kWait));
  REQUIRE(got.data == "from the primary address");
}
