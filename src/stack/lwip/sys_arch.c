/* sys_arch.c: the few functions lwIP (NO_SYS=1) needs from its host: a millisecond clock,
 * randomness and an assert handler. The clock can be replaced so tests drive lwIP's timers. */
#include "lwip/sys.h"
#include "p2p_lwip_port.h"
#include "p2p_lwip_hooks.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint32_t default_now_ms(void* ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static p2p_lwip_now_fn now_fn = default_now_ms;
static void* now_ctx = NULL;

void p2p_lwip_set_clock(p2p_lwip_now_fn fn, void* ctx) {
  now_fn = fn ? fn : default_now_ms;
  now_ctx = fn ? ctx : NULL;
}

u32_t sys_now(void) { return now_fn(now_ctx); }

static p2p_lwip_ip4_input_fn ip4_input_fn = NULL;
static void* ip4_input_ctx = NULL;

void p2p_lwip_set_ip4_input_hook(p2p_lwip_ip4_input_fn fn, void* ctx) {
  ip4_input_fn = fn;
  ip4_input_ctx = ctx;
}

int p2p_lwip_ip4_input_hook(struct pbuf* p, struct netif* inp) {
  return ip4_input_fn ? ip4_input_fn(ip4_input_ctx, p, inp) : 0;
}

unsigned int p2p_lwip_rand(void) {
  unsigned int v;
  RAND_bytes((uint8_t*)&v, sizeof(v));
  return v;
}

void p2p_lwip_assert_failed(const char* msg, const char* file, int line) {
  fprintf(stderr, "level=fatal msg=\"lwip assertion failed\" what=\"%s\" at=%s:%d\n", msg, file, line);
  abort();
}
