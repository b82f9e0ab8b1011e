// wireguard_go_handshake.h: one real WireGuard handshake with wireguard-go as the initiator and
// our device as the responder (fixed keys, ephemeral and index: wireguard_go_kat_keys.h), for
// wireguard_go_kat_test.cc. Written by tests/wg/tools/wg_kat_recorder; do not edit.
// Recorded with (as root, from the repository root): tests/wg/tools/record_wireguard_go_kat.sh build/default/tests/wg/wg_kat_recorder
// on 2026-12-05, against wireguard-go v0.0.20220316 (Debian package wireguard-go 0.0.20220316-1+b4).
// wireguard-go ran on a TUN in a fresh network namespace with `wg set` (listen-port 51000, the
// keys and preshared key of wireguard_go_kat_keys.h, endpoint 127.0.0.1:51001, allowed-ips
// 10.9.0.1/32); a UDP datagram to 10.9.0.1:9 triggered the handshake.
#ifndef P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_HANDSHAKE_H_
#define P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_HANDSHAKE_H_

namespace p2proxy::wg::kat {

// wireguard-go's handshake initiation (type 1), as it arrived.
inline constexpr char kInitiationHex[] =
    "01000000285ecf5cbeaa569dde593dcde849b77c939205576f4243c065126ec8"
    "2fcb8d4eadd742545289987379337997911310f68711757751780a6c8efb09d0"
    "56805caf0996581c5aa6c42a9f5ef8c6de26c0a9f121840f42f1b14fd701c52a"
    "318f8016a3b83343a13bc10e7d340e296f7fa04bc1e44741e5a9ed434e7eb606"
    "f4093cbf00000000000000000000000000000000";

// Our handshake response (type 2), which wireguard-go accepted.
inline constexpr char kResponseHex[] =
    "020000003154414b285ecf5c34ca6fd25c62e942f2d60ef6b5ec2fa9673ecfb5"
    "8bae84033cdfd7b1316ca457b81ead7db0eacca1a16716e2ce1e88028f4ca91f"
    "4542722d98606fc904d1d9f200000000000000000000000000000000";

// The first transport message (type 4) wireguard-go sent with the new session.
inline constexpr char kTransportHex[] =
    "040000003154414b0000000000000000f6d1d34a04ccb8057702a96c94f76bf7"
    "656dacf8078dc3dbb7b529f0528f2f6f47242733afec35e55e6d9cc5a9483db4"
    "a2d249a2efdc77ea49476da58361e5ade58ee145362981a7bb07a40f44343c55"
    "9c70f977c2503ffc1f0b5f28759c4b67";

}  // namespace p2proxy::wg::kat

#endif  // P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_HANDSHAKE_H_
