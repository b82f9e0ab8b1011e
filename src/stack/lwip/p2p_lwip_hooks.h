/* p2p_lwip_hooks.h: the lwIP hooks p2proxy uses (included by lwIP through LWIP_HOOK_FILENAME).
 * The functions dispatch to handlers the stack module installs (p2p_lwip_port.h). */
#ifndef P2PROXY_LWIP_HOOKS_H_
#define P2PROXY_LWIP_HOOKS_H_

#ifdef __cplusplus
extern "C" {
#endif

struct pbuf;
struct netif;
/* p2p_lwip_ip4_input_hook sees each IPv4 packet before lwIP decides whether it is addressed to
 * us; returning nonzero means the hook consumed (and freed) it. */
int p2p_lwip_ip4_input_hook(struct pbuf* p, struct netif* inp);

#ifdef __cplusplus
}
#endif

#define LWIP_HOOK_IP4_INPUT(pbuf, input_netif) p2p_lwip_ip4_input_hook((pbuf), (input_netif))

#endif /* P2PROXY_LWIP_HOOKS_H_ */
