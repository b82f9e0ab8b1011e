// store.h: what p2proxy-server keeps (users, roles, nodes, enrollment tokens, resources,
// certificates, revocations, audit events, the snapshot version) behind one interface.
// SqliteStore (sqlite_store.h) is the embedded implementation.
//
// Conventions of every method:
// - Validation happens before anything is written, and an error names the thing and the field
//   ("resource 'vault': port 70000 is not a port (1-65535)"). Secrets (token hashes, private
//   keys) are never repeated in an error.
// - Every write is one transaction: it happens entirely or not at all.
// - An "admin write" is a write that changes what some node sees (users, roles, grants, nodes,
//   resources, certificates, revocations). Each successful admin write bumps the snapshot
//   version by one in the same transaction, so the version never goes back, also across
//   restarts. Writes the server makes on its own (last seen time and endpoint, renewed node
//   certificate serials, tokens, meta values, audit events) do not bump it: no snapshot
//   carries them.
// - Failures carry a StoreError (ErrorOf) next to the absl code, so the server can map them to
//   control.proto's ErrorCode and the admin CLI to its exit status.
// - Times are kept with millisecond precision.
// - A Store is used from one thread.
#ifndef P2PROXY_SERVER_STORE_H_
#define P2PROXY_SERVER_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "control/control.pb.h"

namespace p2proxy::server {

namespace wire = ::p2proxy::control::wire;

// StoreError says what kind of failure a Status from the store reports.
enum class StoreError {
  kNone = 0,         // OK, or a Status the store did not make
  kInvalid,          // a value is malformed or out of range (InvalidArgument)
  kNotFound,         // the named thing does not exist (NotFound)
  kAlreadyExists,    // a thing of that name or key exists (AlreadyExists)
  kInUse,            // something else refers to it (FailedPrecondition)
  kExhausted,        // no free address left in a range (ResourceExhausted)
  kTokenUnknown,     // enrollment: no such token (PermissionDenied)
  kTokenExpired,     // enrollment: the token's time is over (PermissionDenied)
  kTokenUsed,        // enrollment: the token was used already (PermissionDenied)
  kTokenWrongKind,   // enrollment: a site token for a client or the reverse (PermissionDenied)
  kNameTaken,        // enrollment: the name belongs to another node (AlreadyExists)
  kKeyTaken,         // enrollment: the WireGuard key belongs to another node (AlreadyExists)
  kNewerSchema,      // the database was written by a newer p2proxy-server (FailedPrecondition)
  kInternal,         // SQLite failed, or the database is damaged (Internal)
};

// StoreErrorName is "token_unknown", "name_taken", ... (for logs and --json).
absl::string_view StoreErrorName(StoreError error);

// ErrorOf returns the StoreError a store Status carries; kNone for OK or any other Status.
StoreError ErrorOf(const absl::Status& status);

// MakeStoreError builds a Status of the absl code that goes with |error|, carrying |error|.
absl::Status MakeStoreError(StoreError error, absl::string_view message);

// ValidateName checks a name as control.proto defines it (1 to 64 bytes of UTF-8, no control
// character, no ','); the error starts with |what| ("user 'bob': ...", "role: missing").
absl::Status ValidateName(absl::string_view what, absl::string_view value);

// ValidateResource checks |resource| against control.proto's Resource rules (an empty address
// is allowed: the store assigns it) and the store's own: a port of 1 to 65535, every target
// with an address. The error names the resource and the field:
// "resource 'vault': port 70000 is not a port (1-65535)".
absl::Status ValidateResource(const wire::Resource& resource);

// HashToken is the SHA-256 of an enrollment token (32 bytes): the store keeps only this.
std::string HashToken(absl::string_view token);

// ---- Records -------------------------------------------------------------------------------

struct UserRecord {
  std::string name;                // a name (control.proto)
  absl::Time created;
  std::vector<std::string> roles;  // granted roles, sorted
};

struct RoleRecord {
  std::string name;
  absl::Time created;
};

// NodeRecord is a site or a client device.
struct NodeRecord {
  std::string id;                 // "s-..." (site) or "d-..." (device), assigned at enrollment
  wire::NodeKind kind = wire::NODE_KIND_UNSPECIFIED;  // SITE or CLIENT
  std::string name;               // unique among nodes of its kind
  std::string user;               // CLIENT: the owning user; SITE: empty
  std::string wireguard_public_key;  // 32 bytes, unique
  std::string address;            // overlay address, e.g. "100.96.0.2"
  std::string certificate_serial; // the node certificate's serial, as the CA gives it
  absl::Time created;
  std::optional<absl::Time> revoked;
  std::optional<absl::Time> last_seen;
  std::string last_endpoint;      // where the server last heard the node from; empty: never
};

// TokenRecord is a one-time enrollment token. The secret itself is never stored.
struct TokenRecord {
  std::string token_hash;         // HashToken(token), 32 bytes
  wire::NodeKind kind = wire::NODE_KIND_UNSPECIFIED;  // SITE or CLIENT
  // bound_to: SITE: the site's name (the node enrolls under it); CLIENT: the user who will own
  // the device (must exist).
  std::string bound_to;
  absl::Time created;
  absl::Time expires;
  std::optional<absl::Time> used;  // set by EnrollNode
  std::string node_id;             // the node it enrolled; empty until used
};

// EnrollRequest is what a node's Enroll frame asks for, with the token already hashed.
struct EnrollRequest {
  std::string token_hash;  // HashToken(Enroll.token)
  wire::NodeKind kind = wire::NODE_KIND_UNSPECIFIED;
  std::string wireguard_public_key;  // 32 bytes
  // requested_name: empty: the server chooses (a site: the name its token names; a device:
  // its id). A site may only ask for the name its token names.
  std::string requested_name;
  absl::Time now;
};

// CertificateRecord is the TLS certificate of an https resource. key_pem is a secret: the
// database file is 0600; callers wipe their copies when done.
struct CertificateRecord {
  std::string resource;
  std::string chain_pem;  // leaf first
  std::string key_pem;
  std::string serial;
  absl::Time not_after;
};

// ResourceUpdate replaces the fields that are set; the others, and the address, stay.
struct ResourceUpdate {
  std::string name;  // which resource
  std::optional<std::vector<std::string>> domains;
  std::optional<uint32_t> port;
  std::optional<wire::ResourceKind> kind;
  std::optional<std::vector<wire::Target>> targets;
  std::optional<wire::Access> access;
};

// StoredAuditEvent is an audit event as the site sent it, with where and when it was stored.
struct StoredAuditEvent {
  int64_t id = 0;  // increasing in storage order
  std::string site_id;
  uint64_t sequence = 0;  // the batch it came in
  absl::Time stored;
  wire::AuditEvent event;
};

// AuditQuery selects audit events. Unset fields select everything.
struct AuditQuery {
  std::optional<std::string> user;
  std::optional<std::string> resource;
  std::optional<std::string> site_id;
  absl::Time since = absl::InfinitePast();  // event time >= since
  absl::Time until = absl::InfiniteFuture();  // event time < until
  size_t limit = 100;                         // at most this many (0: none)
  bool newest_first = true;                   // by event time, then by storage order
};

// ---- The interface ---------------------------------------------------------------------------

class Store {
 public:
  virtual ~Store() = default;

  // CurrentVersion is the snapshot version: 0 before the first admin write, then increasing.
  virtual uint64_t CurrentVersion() const = 0;
  // BumpVersion is an admin write that changes nothing else (for a change nodes see that the
  // store does not hold, e.g. a meta value the snapshot carries). Returns the new version.
  virtual absl::StatusOr<uint64_t> BumpVersion() = 0;

  // GetMeta returns the value of |key|, or nullopt if unset. SetMeta sets it (no bump).
  // Keys are 1 to 64 bytes of [A-Za-z0-9._-]; values at most 64 KiB.
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key) = 0;
  virtual absl::Status SetMeta(absl::string_view key, absl::string_view value) = 0;

  // ---- Users and roles (admin writes) ----
  // AddUser: kAlreadyExists if taken. RemoveUser: kNotFound; kInUse while the user owns
  // devices (refused rather than cascaded, so removing a user never silently cuts off devices;
  // the message names them: remove them first). The user's device tokens go with the user.
  // Resource grants naming the user stay (they grant nobody).
  virtual absl::StatusOr<UserRecord> AddUser(absl::string_view name, absl::Time now) = 0;
  virtual absl::Status RemoveUser(absl::string_view name) = 0;
  virtual absl::StatusOr<UserRecord> GetUser(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<UserRecord>> ListUsers() = 0;  // by name
  // AddRole: kAlreadyExists if taken. RemoveRole: kNotFound; its grants to users go with it.
  virtual absl::StatusOr<RoleRecord> AddRole(absl::string_view name, absl::Time now) = 0;
  virtual absl::Status RemoveRole(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<RoleRecord>> ListRoles() = 0;  // by name
  // GrantRole: kNotFound for an unknown user or role, kAlreadyExists if already granted.
  // RevokeRole: kNotFound if not granted.
  virtual absl::Status GrantRole(absl::string_view user, absl::string_view role) = 0;
  virtual absl::Status RevokeRole(absl::string_view user, absl::string_view role) = 0;

  // ---- Enrollment tokens (not admin writes: no node sees them) ----
  // CreateToken stores |token| (used and node_id must be unset). kInvalid for a bad hash, kind,
  // name or expiry; kAlreadyExists for the same hash; a SITE token for a name a site already
  // has is kAlreadyExists; a CLIENT token for an unknown user is kNotFound.
  virtual absl::Status CreateToken(const TokenRecord& token) = 0;
  virtual absl::StatusOr<std::vector<TokenRecord>> ListTokens() = 0;  // by creation time
  // DeleteToken: kNotFound if there is none with |token_hash|.
  virtual absl::Status DeleteToken(absl::string_view token_hash) = 0;

  // ---- Nodes ----
  // IssueCertificate is called inside EnrollNode's transaction with the new node (id, name,
  // address set); it returns the node certificate's serial, or an error that aborts the
  // enrollment (nothing is stored, the token stays unused).
  using IssueCertificate = absl::FunctionRef<absl::StatusOr<std::string>(const NodeRecord&)>;

  // EnrollNode trades a token for a node, atomically (an admin write). Checks, in order: the
  // request's fields (kInvalid), the token exists (kTokenUnknown), is not used (kTokenUsed),
  // not expired at |now| (kTokenExpired), is of request.kind (kTokenWrongKind); a site's
  // requested name is its token's (kInvalid); no other node of the kind has the name
  // (kNameTaken), nor any node the key (kKeyTaken); a free node address (kExhausted). Then it
  // creates the node, calls |issue|, marks the token used. On any error nothing changes.
  virtual absl::StatusOr<NodeRecord> EnrollNode(const EnrollRequest& request,
                                                IssueCertificate issue) = 0;
  virtual absl::StatusOr<NodeRecord> GetNode(absl::string_view id) = 0;  // kNotFound
  // FindNodeByKey: the node with WireGuard key |key|; kNotFound.
  virtual absl::StatusOr<NodeRecord> FindNodeByKey(absl::string_view key) = 0;
  // ListNodes: the nodes of |kind| (UNSPECIFIED: all), by kind then name.
  virtual absl::StatusOr<std::vector<NodeRecord>> ListNodes(wire::NodeKind kind) = 0;
  // RevokeNode marks the node revoked at |now| and records its certificate serial as revoked
  // (an admin write). kNotFound; kAlreadyExists if already revoked.
  virtual absl::Status RevokeNode(absl::string_view id, absl::Time now) = 0;
  // RemoveNode deletes the node and frees its address and name; its certificate serial stays
  // revoked (an admin write). kNotFound; kInUse for a site that is a target of resources (the
  // message names them; remove it from their targets first).
  virtual absl::Status RemoveNode(absl::string_view id, absl::Time now) = 0;
  // SetNodeCertificateSerial records a renewed node certificate (no bump; the old serial is
  // not revoked). kNotFound; kInvalid for an empty serial.
  virtual absl::Status SetNodeCertificateSerial(absl::string_view id,
                                                absl::string_view serial) = 0;
  // RecordNodeSeen sets the node's last seen time and endpoint (no bump). kNotFound.
  virtual absl::Status RecordNodeSeen(absl::string_view id, absl::string_view endpoint,
                                      absl::Time now) = 0;
  // IsRevoked: whether a node certificate serial was revoked (RevokeNode, RemoveNode).
  virtual absl::StatusOr<bool> IsRevoked(absl::string_view serial) = 0;

  // ---- Resources (admin writes) ----
  // AddResource stores |resource| (its address must be empty: the store assigns the lowest
  // free address of the resource range). Rules: control.proto's Resource, plus every target
  // has an address and names an existing site, and no domain belongs to another resource.
  // kInvalid (naming the field), kAlreadyExists (name or domain), kNotFound (a target's site),
  // kExhausted. Returns the stored resource.
  virtual absl::StatusOr<wire::Resource> AddResource(const wire::Resource& resource) = 0;
  // UpdateResource replaces the fields |update| sets, under the same rules; the address stays.
  // kNotFound for an unknown resource. A kind that is no longer https drops its certificate.
  virtual absl::StatusOr<wire::Resource> UpdateResource(const ResourceUpdate& update) = 0;
  // RemoveResource deletes it and its certificate; its address becomes free. kNotFound.
  virtual absl::Status RemoveResource(absl::string_view name) = 0;
  virtual absl::StatusOr<wire::Resource> GetResource(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<wire::Resource>> ListResources() = 0;  // by name

  // ---- Certificates of https resources ----
  // PutCertificate stores or replaces the resource's certificate (an admin write: sites get
  // it). kNotFound for an unknown resource, kInvalid if it is not https or a field is bad.
  virtual absl::Status PutCertificate(const CertificateRecord& cert) = 0;
  virtual absl::StatusOr<CertificateRecord> GetCertificate(absl::string_view resource) = 0;
  // ListCertificatesExpiringBefore: those with not_after < |t|, soonest first.
  virtual absl::StatusOr<std::vector<CertificateRecord>> ListCertificatesExpiringBefore(
      absl::Time t) = 0;

  // ---- Audit (not admin writes) ----
  // AppendAuditBatch stores |batch| from site |site_id| unless a batch with the same
  // (site_id, sequence) was stored before: true if stored now, false if it was a repeat (the
  // site resends after a reconnect; nothing is stored twice). kInvalid if the batch breaks a
  // rule of control.proto (ValidateFrame's message, naming the field).
  virtual absl::StatusOr<bool> AppendAuditBatch(absl::string_view site_id,
                                                const wire::AuditBatch& batch,
                                                absl::Time now) = 0;
  virtual absl::StatusOr<std::vector<StoredAuditEvent>> QueryAudit(const AuditQuery& query) = 0;
  // PruneAudit deletes events whose time is before |older_than|, and the record of batches
  // stored before it (a site resends only batches it has not had acknowledged, which are
  // recent). Returns the number of events deleted.
  virtual absl::StatusOr<int64_t> PruneAudit(absl::Time older_than) = 0;
};

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_STORE_H_
