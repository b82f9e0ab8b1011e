// wireguard_go_kat_keys.h: the fixed inputs of the wireguard-go handshake known-answer test,
// shared by the recording tool (tests/wg/tools/wg_kat_recorder.cc) and the test
// (tests/wg/wireguard_go_kat_test.cc). The keys came from `wg genkey` / `wg genpsk` and the
// public keys from `wg pubkey`; they protect nothing. Changing any of them invalidates
// wireguard_go_handshake.h: record it again (tests/wg/tools/record_wireguard_go_kat.sh).
#ifndef P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_KAT_KEYS_H_
#define P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_KAT_KEYS_H_

#include <cstdint>

namespace p2proxy::wg::kat {

// wireguard-go, the initiator.
inline constexpr char kInitiatorPrivateKey[] = "ADBpGI2I8DKO39NVn/qYr9bvyQpn+1IP2NQ0duvMGF0=";
inline constexpr char kInitiatorPublicKey[] = "NYYlNe1WpQfHL2oiP45ZBkZdSrJc8tGHJvKqXx3Pv0s=";
// Our device, the responder, and the ephemeral private key it is made to use.
inline constexpr char kResponderPrivateKey[] = "0Gj6q0nH0Rv2lWl8bF6IqOhRC4fzHHGvG7gWpyfjFHw=";
inline constexpr char kResponderPublicKey[] = "cBAEprzCG5FyPOEYq7IGWEZ4U6BWO1hlHaEjNrFfIkQ=";
inline constexpr char kResponderEphemeralPrivateKey[] = "sEQ7h8eUpaf5s96y+meaPWAdV6nffiusKmzSrV5HvH0=";
inline constexpr char kResponderEphemeralPublicKey[] = "NMpv0lxi6ULy1g72tewvqWc+z7WLroQDPN/XsTFspFc=";
inline constexpr char kPresharedKey[] = "xhzOn+4pK1XnAejylf1j5nnhfdFXR9zoj9TqRubYwQY=";
// Our sender index in the response.
inline constexpr uint32_t kResponderIndex = 0x4b415431;  // "1TAK" on the wire

// Inside the tunnel: wireguard-go's side sends one UDP datagram with this payload from
// kInitiatorTunnelIp to kResponderTunnelIp:kUdpPort; it is the first transport message.
inline constexpr char kInitiatorTunnelIp[] = "10.9.0.2";
inline constexpr char kResponderTunnelIp[] = "10.9.0.1";
inline constexpr uint16_t kUdpPort = 9;  // discard
inline constexpr char kUdpPayload[] = "p2proxy known-answer test through wireguard-go";

}  // namespace p2proxy::wg::kat

#endif  // P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_KAT_KEYS_H_
