/* arch/cc.h: lwIP's compiler and platform glue for p2proxy (Linux, GCC or Clang). */
#ifndef P2PROXY_LWIP_ARCH_CC_H_
#define P2PROXY_LWIP_ARCH_CC_H_

#include <stdio.h>
#include <stdlib.h>

#define LWIP_NO_CTYPE_H 0
#define BYTE_ORDER LITTLE_ENDIAN
#define LWIP_ERRNO_STDINCLUDE 1

#ifdef __cplusplus
extern "C" {
#endif
/* p2p_lwip_assert_failed reports an lwIP-internal invariant that broke (never input a peer
 * controls: lwIP checks those without asserting) and aborts. */
void p2p_lwip_assert_failed(const char* msg, const char* file, int line);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) p2p_lwip_assert_failed((x), __FILE__, __LINE__)

#endif /* P2PROXY_LWIP_ARCH_CC_H_ */
