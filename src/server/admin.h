// admin.h: `p2proxy-server admin ...`: the administrator's commands (tokens, sites, devices,
// users, roles, resources, the CA, certificates, audit), parsed, run over the Store and
// rendered as aligned tables for people or JSON for scripts. The server implements AdminHost;
// admin_socket.h carries the commands over a local unix socket.
//
// Exit status (AdminResult::exit_code), by convention:
//   0  done;
//   1  the operation was refused or failed (no such user, already exists, in use, store error);
//   2  the command line is wrong (unknown command or flag, a missing or extra argument, a value
//      that is malformed: not a port, not a duration, not a name, a bad --allow or --path).
// Every error is one line starting with the command ("resource add: --port 70000 is not a port
// (1-65535)") that says what to fix. No error and no output ever holds a token's secret except
// `token create`'s own answer.
#ifndef P2PROXY_SERVER_ADMIN_H_
#define P2PROXY_SERVER_ADMIN_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store.h"

namespace p2proxy::server {

// NodeLiveStatus is what the running server knows of one node right now.
struct NodeLiveStatus {
  std::string node_id;
  bool connected = false;          // a control session is open
  uint64_t acked_version = 0;      // the last snapshot version the node acked (0: none)
  std::string endpoint;            // where the server hears its WireGuard from now; empty: unknown
  std::optional<absl::Time> last_seen;
  // The relay: frames it forwarded from and to the node, and whether one went in the last 30 s
  // (the node reaches a peer, or is reached, through the server).
  uint64_t relayed_frames = 0;
  bool relayed_now = false;
  bool over_tls = false;  // its WireGuard reaches the server over TLS (UDP gets no answer)
};

// SiteHealthReport is one client's latest view of one site, from the client's control Health
// frames, kept by the server while the client's session lasts (`site list`, `site show`).
struct SiteHealthReport {
  std::string site_id;
  std::string client_id;
  bool up = false;          // false after 3 missed probes
  uint32_t rtt_micros = 0;  // the client's smoothed RTT; 0: unknown (no answer yet)
  absl::Time received;      // when the server received the report
};

// CertRotation says which certificates `cert rotate` renews.
struct CertRotation {
  enum class What { kServer, kResource, kAllResources };
  What what = What::kServer;
  std::string resource;  // kResource: the resource's name (it exists and is https)
};

// AdminHost is what the admin commands need from the running server. Called on the thread
// that runs RunAdmin (the server's loop); each call should be quick.
class AdminHost {
 public:
  virtual ~AdminHost() = default;

  // store is the server's store; the commands read and write it directly.
  virtual Store& store() = 0;
  // Now is the time writes are stamped with (and tokens' expiry counted from).
  virtual absl::Time Now() = 0;
  // EnrollmentPin is the SHA-256 of the SubjectPublicKeyInfo of the server's control-channel
  // certificate, as 64 lowercase hex digits; it goes into every token so the node can
  // authenticate the server at enrollment.
  virtual std::string EnrollmentPin() = 0;
  // ControlAddress is the "HOST:PORT" nodes dial for the control channel (printed in the
  // enrollment command).
  virtual std::string ControlAddress() = 0;
  // CaCertificatePem is the internal CA's certificate (PEM).
  virtual std::string CaCertificatePem() = 0;
  // RotateCertificates issues new certificates for |what| now and stores them (resource
  // certificates with Store::PutCertificate, an admin write, so RunAdmin then calls Changed();
  // the host need not push by itself). Errors are shown to the administrator as they are, so
  // they must not hold secrets.
  virtual absl::Status RotateCertificates(const CertRotation& what) = 0;
  // Changed is called once after every command whose writes changed what nodes see (exactly
  // when the store's snapshot version went up): the server pushes new snapshots.
  virtual void Changed() = 0;
  // Disconnect is called after a node was revoked or removed: close its control session (and
  // forget its WireGuard peer) if it has one. Called after Changed().
  virtual void Disconnect(absl::string_view node_id) = 0;
  // LiveStatus is the live state of the nodes the server knows of (any order; nodes absent are
  // shown as offline).
  virtual std::vector<NodeLiveStatus> LiveStatus() = 0;
  // HealthReports is the latest health report of every connected client for every site it
  // reported on (any order; sites that exist only). The default, for hosts without a control
  // plane, has none.
  virtual std::vector<SiteHealthReport> HealthReports() { return {}; }
  // RandomBytes fills |out| with |len| cryptographically random bytes (token secrets). The
  // default uses BoringSSL's RAND_bytes; tests may override it.
  virtual void RandomBytes(uint8_t* out, size_t len);
};

// AdminResult is one command's outcome: its exit status and what goes to stdout and stderr.
struct AdminResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// kTokenPrefix starts every enrollment token: "p2p1_<64 hex secret>_<64 hex server pin>".
inline constexpr absl::string_view kTokenPrefix = "p2p1_";
// kDefaultTokenTtl and kMaxTokenTtl bound `token create --ttl`.
inline constexpr absl::Duration kDefaultTokenTtl = absl::Hours(1);
inline constexpr absl::Duration kMaxTokenTtl = absl::Hours(24 * 30);

// RunAdmin runs one admin command. |args| are the words after `p2proxy-server admin`
// ({"resource", "add", "vault", "--domain", ...}). Never throws, never aborts on any input;
// `help`, `COMMAND --help` and an empty |args| print usage.
AdminResult RunAdmin(AdminHost& host, const std::vector<std::string>& args);

// AdminUsage is the full usage text (what `help` prints).
std::string AdminUsage();

// The node's side of the token format is control::ParseEnrollmentToken (control/node_agent.h).

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_ADMIN_H_
