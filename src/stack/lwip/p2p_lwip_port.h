/* p2p_lwip_port.h: hooks p2proxy sets in its lwIP port (sys_arch.c). */
#ifndef P2PROXY_LWIP_PORT_H_
#define P2PROXY_LWIP_PORT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t (*p2p_lwip_now_fn)(void* ctx);

/* p2p_lwip_set_clock makes lwIP's sys_now() call |fn(ctx)|; NULL restores CLOCK_MONOTONIC.
 * lwIP is single-threaded here: call it on the thread that drives lwIP. */
void p2p_lwip_set_clock(p2p_lwip_now_fn fn, void* ctx);

struct pbuf;
struct netif;
typedef int (*p2p_lwip_ip4_input_fn)(void* ctx, struct pbuf* p, struct netif* inp);

/* p2p_lwip_set_ip4_input_hook installs the handler behind LWIP_HOOK_IP4_INPUT (NULL: none). */
void p2p_lwip_set_ip4_input_hook(p2p_lwip_ip4_input_fn fn, void* ctx);

#ifdef __cplusplus
}
#endif

#endif /* P2PROXY_LWIP_PORT_H_ */
