/* lwipopts.h: p2proxy's lwIP configuration. lwIP runs with NO_SYS=1 on the libuv loop of the
 * thread that owns it (never behind a lock), behind a point-to-point netif fed by the WireGuard
 * device. Sizes are for a tunnel: a 1420-byte MTU, window scaling and large windows so one TCP
 * stream can fill a fast path, and fixed pools so a peer cannot make memory grow without bound
 * (invariant I5). */
#ifndef P2PROXY_LWIPOPTS_H_
#define P2PROXY_LWIPOPTS_H_

/* ---- threading and OS ---- */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_TIMERS 1
#define LWIP_NETIF_API 0

/* ---- protocols: IPv4 overlay; no link layer (the netif is a layer-3 tunnel) ---- */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_RAW 1
#define LWIP_ICMP 1
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_ALTCP 0
#define IP_FORWARD 0
#define IP_REASSEMBLY 1
#define IP_FRAG 0 /* we never send more than the MTU */
#define IP_REASS_MAX_PBUFS 64
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_SINGLE_NETIF 0

/* ---- memory: heap from libc, fixed pools for protocol control blocks ---- */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEMP_NUM_PBUF 1024
#define MEMP_NUM_RAW_PCB 4
#define MEMP_NUM_UDP_PCB 1024
#define MEMP_NUM_TCP_PCB 4096
#define MEMP_NUM_TCP_PCB_LISTEN 256
#define MEMP_NUM_TCP_SEG 32768  /* lwIP counts pool entries in 16 bits */
#define MEMP_NUM_REASSDATA 32
#define MEMP_NUM_SYS_TIMEOUT 8
#define PBUF_POOL_SIZE 2048
#define PBUF_POOL_BUFSIZE 1536

/* ---- TCP sized for a 1420-byte tunnel MTU ---- */
#define P2P_TUNNEL_MTU 1420
#define TCP_MSS (P2P_TUNNEL_MTU - 20 - 20)
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 4
#define TCP_WND (256 * 1024)
#define TCP_SND_BUF (256 * 1024)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF) / TCP_MSS)
/* lwIP keeps the low-water mark in 16 bits. */
#define TCP_SNDLOWAT (0xFFFF - (4 * TCP_MSS) - 1)
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_BYTES (512 * 1024)
#define TCP_OOSEQ_MAX_PBUFS 512
#define LWIP_TCP_SACK_OUT 1
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 255
#define LWIP_TCP_KEEPALIVE 1
#define TCP_OVERSIZE TCP_MSS
#define LWIP_TCP_TIMESTAMPS 0
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0
/* lwIP counts retransmission timeouts in ticks of 2 * TCP_TMR_INTERVAL. Its default 250 ms
 * (500 ms ticks) makes every loss that fast retransmit misses cost half a second or more; in a
 * tunnel whose RTT is below one tick that collapses throughput (40 Mbit/s through wireguard-go
 * in bench/site_throughput.sh). 20 ms ticks keep recovery quick while the RTT estimator's
 * integer floor (3 ticks) keeps the minimum RTO near 60 ms, above FreeBSD's 30 ms. */
#define TCP_TMR_INTERVAL 10
/* TCP_MAXRTX stays at lwIP's maximum, 12 (its backoff table's size): with the RTO doubling up
 * to 128 x, a connection survives at least about 45 s of silence from its peer. */

/* ---- checksums: computed in software; inbound packets are also checked ---- */
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_UDP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_UDP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define LWIP_CHKSUM_ALGORITHM 3

/* ---- netif ---- */
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_HOSTNAME 0
#define LWIP_NUM_NETIF_CLIENT_DATA 1

/* ---- statistics (counters are read by the stack module's metrics) ---- */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define MEM_STATS 1
#define MEMP_STATS 1
#define TCP_STATS 1
#define UDP_STATS 1
#define IP_STATS 1
#define ICMP_STATS 1

/* ---- randomness for ISNs and ports (sys_arch.c) ---- */
#ifdef __cplusplus
extern "C" {
#endif
unsigned int p2p_lwip_rand(void);
#ifdef __cplusplus
}
#endif
#define LWIP_RAND() ((u32_t)p2p_lwip_rand())

/* ---- hooks (p2p_lwip_hooks.h) ---- */
#define LWIP_HOOK_FILENAME "p2p_lwip_hooks.h"

/* LWIP_DEBUG stays undefined: lwIP tests #ifdef, so even "0" would turn its debug code on. */

#endif /* P2PROXY_LWIPOPTS_H_ */
