# Lwip: builds lwIP's core (IPv4, TCP, UDP, ICMP, raw) from the tree that `apt-get source lwip`
# unpacked (scripts/setup.sh), with p2proxy's own lwipopts.h and port in src/stack/lwip/.
# Defines p2proxy_lwip (alias p2proxy::lwip). lwIP's code is not ours: it gets no -Werror.
if(NOT EXISTS "${P2P_LWIP_DIR}/src/Filelists.cmake")
  message(FATAL_ERROR
    "lwIP source not found at P2P_LWIP_DIR=${P2P_LWIP_DIR}.\n"
    "Run scripts/setup.sh (as root) to fetch it with 'apt-get source lwip', or pass "
    "-DP2P_LWIP_DIR=/path/to/lwip-2.1.3.")
endif()
set(LWIP_DIR "${P2P_LWIP_DIR}")
include("${P2P_LWIP_DIR}/src/Filelists.cmake")
if(NOT LWIP_VERSION_STRING VERSION_EQUAL 2.1.3)
  message(WARNING "lwIP ${LWIP_VERSION_STRING} found; p2proxy is built and tested with 2.1.3")
endif()
# Only what a tunnel endpoint needs: no DHCP/AutoIP/IGMP/ARP (the netif is point to point).
set(P2P_LWIP_SRCS
  ${LWIP_DIR}/src/core/init.c ${LWIP_DIR}/src/core/def.c ${LWIP_DIR}/src/core/inet_chksum.c
  ${LWIP_DIR}/src/core/ip.c ${LWIP_DIR}/src/core/mem.c ${LWIP_DIR}/src/core/memp.c
  ${LWIP_DIR}/src/core/netif.c ${LWIP_DIR}/src/core/pbuf.c ${LWIP_DIR}/src/core/raw.c
  ${LWIP_DIR}/src/core/stats.c ${LWIP_DIR}/src/core/sys.c ${LWIP_DIR}/src/core/tcp.c
  ${LWIP_DIR}/src/core/tcp_in.c ${LWIP_DIR}/src/core/tcp_out.c ${LWIP_DIR}/src/core/timeouts.c
  ${LWIP_DIR}/src/core/udp.c
  ${LWIP_DIR}/src/core/ipv4/icmp.c ${LWIP_DIR}/src/core/ipv4/ip4.c
  ${LWIP_DIR}/src/core/ipv4/ip4_addr.c ${LWIP_DIR}/src/core/ipv4/ip4_frag.c
  "${PROJECT_SOURCE_DIR}/src/stack/lwip/sys_arch.c")
add_library(p2proxy_lwip STATIC ${P2P_LWIP_SRCS})
add_library(p2proxy::lwip ALIAS p2proxy_lwip)
target_include_directories(p2proxy_lwip SYSTEM PUBLIC
  "${PROJECT_SOURCE_DIR}/src/stack/lwip" "${LWIP_DIR}/src/include")
target_compile_options(p2proxy_lwip PRIVATE -w)
target_link_libraries(p2proxy_lwip PUBLIC BoringSSL::crypto)
