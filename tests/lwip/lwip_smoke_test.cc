// lwIP, built from Debian's source with p2proxy's lwipopts.h, answers a ping and a TCP SYN
// arriving on a point-to-point netif (no link layer), the way the site's stack will use it.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

extern "C" {
#include "lwip/inet_chksum.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip4.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwipopts.h"
}

namespace {

std::vector<std::vector<uint8_t>> g_out;

err_t CaptureOutput(struct netif*, struct pbuf* p, const ip4_addr_t*) {
  std::vector<uint8_t> pkt(p->tot_len);
  pbuf_copy_partial(p, pkt.data(), p->tot_len, 0);
  g_out.push_back(std::move(pkt));
  return ERR_OK;
}

err_t InitNetif(struct netif* nif) {
  nif->name[0] = 'w';
  nif->name[1] = 'g';
  nif->mtu = P2P_TUNNEL_MTU;
  nif->output = CaptureOutput;
  nif->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

void Put16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  v[off] = static_cast<uint8_t>(x >> 8);
  v[off + 1] = static_cast<uint8_t>(x);
}

std::vector<uint8_t> Ipv4(uint8_t proto, const uint8_t src[4], const uint8_t dst[4],
                          const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> p(20 + payload.size());
  p[0] = 0x45;
  Put16(p, 2, static_cast<uint16_t>(p.size()));
  p[8] = 64;
  p[9] = proto;
  std::memcpy(&p[12], src, 4);
  std::memcpy(&p[16], dst, 4);
  Put16(p, 10, lwip_ntohs(inet_chksum(p.data(), 20)));
  std::memcpy(&p[20], payload.data(), payload.size());
  return p;
}

struct netif* StartLwip() {
  static bool initialized = false;
  static struct netif nif;
  if (!initialized) {
    lwip_init();
    ip4_addr_t addr, mask, gw;
    IP4_ADDR(&addr, 100, 96, 0, 2);
    IP4_ADDR(&mask, 255, 255, 255, 255);
    IP4_ADDR(&gw, 0, 0, 0, 0);
    REQUIRE(netif_add(&nif, &addr, &mask, &gw, nullptr, InitNetif, ip4_input) != nullptr);
    netif_set_default(&nif);
    netif_set_up(&nif);
    netif_set_link_up(&nif);
    initialized = true;
  }
  g_out.clear();
  return &nif;
}

void Input(struct netif* nif, const std::vector<uint8_t>& pkt) {
  struct pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(pkt.size()), PBUF_POOL);
  REQUIRE(p != nullptr);
  REQUIRE(pbuf_take(p, pkt.data(), static_cast<u16_t>(pkt.size())) == ERR_OK);
  REQUIRE(nif->input(p, nif) == ERR_OK);
}

const uint8_t kPeer[4] = {100, 96, 0, 9};
const uint8_t kSelf[4] = {100, 96, 0, 2};

}  // namespace

TEST_CASE("lwIP answers an ICMP echo on the netif address") {
  struct netif* nif = StartLwip();
  std::vector<uint8_t> icmp = {8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, 'p', '2', 'p'};
  Put16(icmp, 2, lwip_ntohs(inet_chksum(icmp.data(), static_cast<u16_t>(icmp.size()))));
  Input(nif, Ipv4(IP_PROTO_ICMP, kPeer, kSelf, icmp));
  REQUIRE(g_out.size() == 1);
  const auto& reply = g_out[0];
  REQUIRE(reply.size() == 20 + icmp.size());
  REQUIRE(std::memcmp(&reply[12], kSelf, 4) == 0);
  REQUIRE(std::memcmp(&reply[16], kPeer, 4) == 0);
  REQUIRE(reply[20] == 0);  // echo reply
  REQUIRE(std::memcmp(&reply[24], &icmp[4], icmp.size() - 4) == 0);
  REQUIRE(inet_chksum(reply.data(), 20) == 0);
}

TEST_CASE("lwIP's TCP answers a SYN to a listening port with SYN-ACK, and one to a closed port with RST") {
  struct netif* nif = StartLwip();
  struct tcp_pcb* pcb = tcp_new();
  REQUIRE(pcb != nullptr);
  REQUIRE(tcp_bind(pcb, IP4_ADDR_ANY, 8080) == ERR_OK);
  struct tcp_pcb* listener = tcp_listen(pcb);
  REQUIRE(listener != nullptr);

  auto syn_to = [&](uint16_t port) {
    std::vector<uint8_t> tcp(20);
    Put16(tcp, 0, 40000);
    Put16(tcp, 2, port);
    tcp[4] = 0x01;  // seq 0x01000000
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;  // SYN
    Put16(tcp, 14, 65535);
    ip4_addr_t src, dst;
    std::memcpy(&src.addr, kPeer, 4);
    std::memcpy(&dst.addr, kSelf, 4);
    struct pbuf* p = pbuf_alloc(PBUF_RAW, 20, PBUF_RAM);
    pbuf_take(p, tcp.data(), 20);
    uint16_t sum = ip_chksum_pseudo(p, IP_PROTO_TCP, 20, reinterpret_cast<ip_addr_t*>(&src),
                                    reinterpret_cast<ip_addr_t*>(&dst));
    pbuf_free(p);
    Put16(tcp, 16, lwip_ntohs(sum));
    Input(nif, Ipv4(IP_PROTO_TCP, kPeer, kSelf, tcp));
  };

  syn_to(8080);
  REQUIRE(g_out.size() == 1);
  REQUIRE(g_out[0][9] == IP_PROTO_TCP);
  REQUIRE((g_out[0][20 + 13] & 0x12) == 0x12);  // SYN+ACK
  // The MSS option advertises the tunnel's MSS (1420 - 40).
  REQUIRE(g_out[0][20 + 20] == 2);
  REQUIRE(((g_out[0][20 + 22] << 8) | g_out[0][20 + 23]) == TCP_MSS);

  g_out.clear();
  syn_to(9999);
  REQUIRE(g_out.size() == 1);
  REQUIRE((g_out[0][20 + 13] & 0x04) == 0x04);  // RST
  tcp_close(listener);
}
