// uapi.h: the WireGuard cross-platform userspace API (the text protocol `wg` speaks over
// /var/run/wireguard/NAME.sock): request framing, "set" parsing, and "get"/errno formatting.
//
// The protocol (https://www.wireguard.com/xplatform/) is line based. A client sends either
//   get=1\n\n
// or
//   set=1\nkey=value\n...\n\n
// and the daemon answers a get with key=value lines followed by "errno=0\n\n", and a set with
// "errno=N\n\n". Keys travel as 64 lowercase hex digits, not base64. Everything here is pure: no
// I/O; the socket side feeds bytes in and writes the returned strings out.
#ifndef P2PROXY_WG_UAPI_H_
#define P2PROXY_WG_UAPI_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "crypto/secret.h"

namespace p2proxy::wg {

// UapiPeerSet is one peer block of a set request: everything from a public_key line up to the
// next public_key line or the end of the request. Optional fields are the ones the request named;
// the device leaves the others as they are.
struct UapiPeerSet {
  crypto::PublicKey public_key{};
  // remove: delete the peer. The device ignores the block's other fields (wireguard-go does the
  // same; `wg set ... remove` sends nothing else).
  bool remove = false;
  // update_only: change the peer if it exists, never create it.
  bool update_only = false;
  // preshared_key: all zeros means "remove the preshared key" (what `wg set ... preshared-key
  // /dev/null` sends).
  std::optional<crypto::Key> preshared_key;
  std::optional<base::SocketAddress> endpoint;
  // persistent_keepalive_interval: seconds; 0 turns keepalives off.
  std::optional<uint16_t> persistent_keepalive_interval;
  // replace_allowed_ips: drop the peer's current allowed IPs before adding |allowed_ips|. A
  // replace_allowed_ips line after some allowed_ip lines drops those too, so |allowed_ips| holds
  // only the prefixes that follow it, as the protocol's in-order semantics require.
  bool replace_allowed_ips = false;
  // allowed_ips: canonical prefixes (host bits cleared), in request order, to add.
  std::vector<base::IpPrefix> allowed_ips;
};

// UapiSet is a parsed set request, to be applied in order: device fields, then (after removing
// all peers if replace_peers) each peer block. The same public key may appear in more than one
// block; later blocks update what earlier ones did.
struct UapiSet {
  // private_key: all zeros means "remove the private key" (`wg set ... private-key /dev/null`).
  std::optional<crypto::Key> private_key;
  std::optional<uint16_t> listen_port;  // 0 means "pick a random port"
  std::optional<uint32_t> fwmark;       // 0 means "no mark"
  bool replace_peers = false;
  std::vector<UapiPeerSet> peers;
};

// ParseUapiSet parses the body of a set request: the key=value lines after "set=1\n", up to but
// excluding the empty line that ends the request (UapiRequestReader::Next returns exactly that).
// A trailing newline on the last line is optional. Line numbers in errors count from the first
// line of |body| as line 1.
//
// It accepts the keys of protocol version 1: private_key, listen_port, fwmark, replace_peers
// (device keys, only before the first public_key), and public_key, remove, update_only,
// preshared_key, endpoint (an IP literal: "192.0.2.1:51820" or "[2001:db8::1]:51820"),
// persistent_keepalive_interval, replace_allowed_ips, allowed_ip (address/length),
// protocol_version (must be 1). Flags accept only "true". Keys are exactly 64 lowercase hex digits.
//
// Failure: InvalidArgument naming the line and key, e.g.
// "line 3: listen_port: '70000' is not a number from 0 to 65535". Unknown keys, device keys after
// a public_key, peer keys before one, a key repeated within one block, an empty line, a line
// without '=', and any byte outside printable ASCII are errors. Messages never contain the value
// of a key line (private, preshared or public), and never echo anything that does not look like
// a key name, in case a key was pasted where a name belongs.
absl::StatusOr<UapiSet> ParseUapiSet(absl::string_view body);

// UapiPeerState is what a get reports about one peer.
struct UapiPeerState {
  crypto::PublicKey public_key{};
  crypto::Key preshared_key;  // all zeros: none
  std::optional<base::SocketAddress> endpoint;
  uint16_t persistent_keepalive_interval = 0;
  absl::Time last_handshake = absl::UnixEpoch();  // the epoch (or earlier): never
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  std::vector<base::IpPrefix> allowed_ips;
};

// UapiState is what a get reports about the device.
struct UapiState {
  std::optional<crypto::Key> private_key;  // absent or all zeros: none
  uint16_t listen_port = 0;
  uint32_t fwmark = 0;  // 0: none
  std::vector<UapiPeerState> peers;
};

// FormatUapiGet returns the complete answer to "get=1": the key=value lines in the order
// wireguard-go sends them, then "errno=0\n\n". private_key is written only if set and nonzero,
// fwmark only if nonzero, a peer's endpoint only if set and valid; listen_port always (as the
// kernel reports it). An allowed IP that is neither IPv4 nor IPv6 is skipped (wg would reject
// the whole answer).
//
// The result holds the private and preshared keys in hex: callers wipe it (OPENSSL_cleanse)
// once written.
std::string FormatUapiGet(const UapiState& state);

// FormatUapiErrno returns "errno=N\n\n" with N = |err| as given: the answer to a set, or to a get
// that failed. Sign convention, from wg(8)'s ipc-uapi.h and wireguard-go: after a set, wg reads
// N and reports errno -N, so a failed set is answered with a negated errno
// (FormatUapiErrno(-EINVAL) gives "errno=-22\n\n"); after a get, wg accepts only N >= 0.
std::string FormatUapiErrno(int err);

// UapiRequestReader splits the byte stream of one UAPI connection into requests. It buffers what
// it is fed, at most kMaxBuffered unconsumed bytes, and hands out one complete request per Next.
//
//   UapiRequestReader reader;
//   reader.Feed(bytes_from_socket);
//   std::string body;
//   for (;;) {
//     auto r = reader.Next(&body);
//     if (r == UapiRequestReader::Result::kNeedMore) break;          // wait for more bytes
//     if (r == UapiRequestReader::Result::kError) { close(); break; }  // as wireguard-go does
//     if (r == UapiRequestReader::Result::kGet) Write(FormatUapiGet(state));
//     if (r == UapiRequestReader::Result::kSet) Write(Apply(ParseUapiSet(body)));
//   }
//
// The framing is checked as bytes arrive: anything that cannot begin "get=1\n\n" or "set=1\n" is
// an error at once, without waiting for a newline. The set body itself is not validated here
// (ParseUapiSet does that), so a malformed set still gets an errno answer. Errors are sticky:
// after kError the connection is beyond repair and every call returns kError.
//
// The buffer may hold private keys in hex; it is wiped as requests are consumed and on
// destruction.
class UapiRequestReader {
 public:
  enum class Result { kNeedMore, kGet, kSet, kError };

  // kMaxBuffered caps the unconsumed bytes (about 4000 peers' worth of set request). Callers
  // drain with Next after every Feed, so the cap bounds one request, not a pipeline of them.
  static constexpr size_t kMaxBuffered = size_t{1} << 20;

  UapiRequestReader() = default;
  UapiRequestReader(const UapiRequestReader&) = delete;
  UapiRequestReader& operator=(const UapiRequestReader&) = delete;
  ~UapiRequestReader();

  // Feed appends |bytes|. It returns kError if the reader is in error or the unconsumed bytes
  // would exceed kMaxBuffered (nothing is appended then, and the reader stays in error);
  // otherwise it returns what Next would return now, without consuming anything.
  Result Feed(absl::string_view bytes);

  // Next consumes the first complete request: kGet, or kSet with |*set_body| set to the body
  // (see ParseUapiSet; empty for "set=1\n\n"). kNeedMore (nothing consumed) if no request is
  // complete yet; kError if the buffered bytes can never form a request. |set_body| is written
  // only for kSet and may be null if the caller does not want it.
  Result Next(std::string* set_body);

  // buffered_len is the number of unconsumed bytes.
  size_t buffered_len() const { return buffer_.size() - consumed_; }

 private:
  // Scan looks at the unconsumed bytes without consuming them. For kGet/kSet it sets
  // |*request_len| to the length of the whole request, and for kSet |*body_len| to the length of
  // the body that starts right after "set=1\n".
  Result Scan(size_t* request_len, size_t* body_len);
  // Compact drops the consumed bytes from the front of buffer_.
  void Compact();
  // Fail enters the sticky error state and wipes the buffer.
  void Fail();

  std::string buffer_;
  size_t consumed_ = 0;  // bytes at the front of buffer_ already handed out
  // scanned_: offset (from consumed_) up to which a set request in progress has been searched
  // for its terminating "\n\n", so byte-at-a-time feeding stays linear.
  size_t scanned_ = 0;
  bool error_ = false;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_UAPI_H_
