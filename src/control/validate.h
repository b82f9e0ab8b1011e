// validate.h: the rules of control.proto that protobuf cannot express (key lengths, versions,
// address syntax, bounded and clean strings, bounded counts, uniqueness, references), checked
// on every frame a peer sends before anything acts on it.
#ifndef P2PROXY_CONTROL_VALIDATE_H_
#define P2PROXY_CONTROL_VALIDATE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "control/control.pb.h"

namespace p2proxy::control {

// Implementation limits on counts. A frame is capped too (1 MiB by default, framing.h), so
// these bound the work and memory of one frame, not only its size.
inline constexpr size_t kMaxPeers = 10'000;         // Snapshot.peers
inline constexpr size_t kMaxResources = 10'000;     // Snapshot.resources
inline constexpr size_t kMaxCertificates = 10'000;  // SiteSection.certificates
inline constexpr size_t kMaxAllowedIps = 1'024;     // Peer.allowed_ips
inline constexpr size_t kMaxRoles = 64;             // Peer.roles, AuditEvent.roles
inline constexpr size_t kMaxDomains = 64;           // Resource.domains
inline constexpr size_t kMaxTargets = 64;           // Resource.targets
// kInProcessTarget: a Target.address that names the program embedding the site (libp2proxy's
// Site::Listen) instead of a LAN address; tcp and https resources only.
inline constexpr absl::string_view kInProcessTarget = "in-process";
inline constexpr size_t kMaxGrants = 1'000;         // users, and roles, of Access and PathRule
inline constexpr size_t kMaxPathRules = 256;        // Access.paths
inline constexpr size_t kMaxZones = 256;            // ClientSection.zones
inline constexpr size_t kMaxDnsRecords = 100'000;   // ClientSection.records
inline constexpr size_t kMaxEndpoints = 16;         // EndpointReport.endpoints
inline constexpr size_t kMaxHealthSites = 10'000;   // Health.sites
inline constexpr size_t kMaxAuditEvents = 1'000;    // AuditBatch.events

// Limits on lengths, in bytes.
inline constexpr size_t kMaxNameLen = 64;              // names: users, roles, resources, nodes
inline constexpr size_t kMaxIdLen = 64;                // node ids
inline constexpr size_t kMaxTokenLen = 256;            // Enroll.token
inline constexpr size_t kMaxDomainLen = 253;           // RFC 1035 2.3.4 (255 on the wire)
inline constexpr size_t kMaxLabelLen = 63;             // RFC 1035 2.3.4
inline constexpr size_t kMaxChainPemLen = 64 * 1024;   // certificate chains
inline constexpr size_t kMaxPemLen = 16 * 1024;        // one CA certificate, CSR or key
inline constexpr size_t kMaxPathPrefixLen = 1'024;     // PathRule.prefix
inline constexpr size_t kMaxAuditPathLen = 8'192;      // AuditEvent.path
inline constexpr size_t kMaxMethodLen = 32;            // AuditEvent.method
inline constexpr size_t kMaxHostLen = 255;             // AuditEvent.host
inline constexpr size_t kMaxReasonLen = 512;           // AuditEvent.reason
inline constexpr size_t kMaxMessageLen = 1'024;        // Error.message, Ack.error
inline constexpr uint32_t kMaxRttMicros = 60'000'000;  // SiteHealth.rtt_micros: one minute

// ValidateFrame checks |frame| against every rule written in control.proto that needs no
// context (the rules that do, such as "node_id matches the certificate" or "a site snapshot
// holds the site's own target", are the channel's). OK, or InvalidArgument with one line
// naming the first offending field's path and what is wrong:
//   "control: snapshot.peers[3].public_key: 31 bytes; a WireGuard key is 32"
// Values are repeated in errors only cut short and escaped, and secrets (the enrollment token,
// private keys) never. A frame with no message set is an error too. The cost is linear in the
// frame's size (uniqueness through hash sets).
absl::Status ValidateFrame(const wire::Frame& frame);

// WipeFrameSecrets overwrites (OPENSSL_cleanse) and clears the secrets |frame| holds: the
// enrollment token and the certificate keys of a site snapshot. The receiver calls it once it
// has taken the keys into its own wiping types, and the sender once the frame is encoded.
void WipeFrameSecrets(wire::Frame* frame);

// kMaxQuotedLen is how much of a bad value an error repeats.
inline constexpr size_t kMaxQuotedLen = 64;
// QuoteForError repeats |value| in an error: in single quotes, cut to kMaxQuotedLen bytes (then
// "..."), bytes outside printable ASCII, quotes and backslashes escaped, so the error stays one
// readable line whatever a peer or an administrator sent. Never pass a secret.
std::string QuoteForError(absl::string_view value);

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_VALIDATE_H_
