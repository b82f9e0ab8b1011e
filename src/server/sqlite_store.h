// sqlite_store.h: the Store on an embedded SQLite database (WAL, versioned schema migrations,
// one transaction per write).
#ifndef P2PROXY_SERVER_SQLITE_STORE_H_
#define P2PROXY_SERVER_SQLITE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/ip_prefix.h"
#include "server/store.h"

struct sqlite3;

namespace p2proxy::server {

// SqliteStoreOptions: the deployment's ranges and the store's sources of randomness.
struct SqliteStoreOptions {
  // node_range: node addresses (DESIGN.md §3). Its first address is the network, the second
  // the server's (100.96.0.1), the last the broadcast: none is ever given to a node.
  base::IpPrefix node_range = base::IpPrefix::Make(base::IpAddress::V4(100, 96, 0, 0), 17);
  // resource_range: resource addresses. Its second address is the client's resolver
  // (100.96.128.1); like the network and broadcast addresses it is never given to a resource.
  base::IpPrefix resource_range = base::IpPrefix::Make(base::IpAddress::V4(100, 96, 128, 0), 18);
  // random: fills the buffer with random bytes (node ids). Empty: BoringSSL's RAND_bytes.
  std::function<void(uint8_t* out, size_t len)> random;
  // busy_timeout_ms: how long a write waits for another connection's lock before failing.
  int busy_timeout_ms = 5000;
};

// kSchemaVersion is the schema this code writes (PRAGMA user_version). Open migrates an older
// database step by step and refuses a newer one.
inline constexpr int kSchemaVersion = 1;

// SqliteStore keeps everything in one SQLite file.
//
// Durability: journal_mode=WAL and synchronous=FULL, so a write that returned OK is on disk
// (the WAL is fsynced at every commit) and survives a kill -9 or a power loss.
//
// Secrets at rest: the database holds the private keys of https resources, so Open creates
// the file with mode 0600 (and narrows an existing file to 0600); SQLite creates the -wal and
// -shm files with the database file's mode. The directory's permissions are the operator's.
//
// Concurrency: one SqliteStore per process, used from one thread. Other processes (sqlite3 for
// inspection, a backup) may read the file meanwhile; CurrentVersion is cached, so writes from
// another process are not supported.
class SqliteStore final : public Store {
 public:
  // Open opens (creating if needed) the database at |path| and applies the schema migrations
  // it lacks, each in its own transaction. Fails with kNewerSchema for a database of a newer
  // schema, kInvalid for bad options (ranges that are not IPv4 or too small), kInternal if the
  // file cannot be opened or is not a database; the message names the path.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                           SqliteStoreOptions options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // migrations_applied is how many migration steps this Open applied (0: the schema was
  // current).
  int migrations_applied() const { return migrations_applied_; }

  // IntegrityCheck runs PRAGMA integrity_check: OK, or kInternal with SQLite's first complaint.
  absl::Status IntegrityCheck();

  uint64_t CurrentVersion() const override { return version_; }
  absl::StatusOr<uint64_t> BumpVersion() override;
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view key) override;
  absl::Status SetMeta(absl::string_view key, absl::string_view value) override;

  absl::StatusOr<UserRecord> AddUser(absl::string_view name, absl::Time now) override;
  absl::Status RemoveUser(absl::string_view name) override;
  absl::StatusOr<UserRecord> GetUser(absl::string_view name) override;
  absl::StatusOr<std::vector<UserRecord>> ListUsers() override;
  absl::StatusOr<RoleRecord> AddRole(absl::string_view name, absl::Time now) override;
  absl::Status RemoveRole(absl::string_view name) override;
  absl::StatusOr<std::vector<RoleRecord>> ListRoles() override;
  absl::Status GrantRole(absl::string_view user, absl::string_view role) override;
  absl::Status RevokeRole(absl::string_view user, absl::string_view role) override;

  absl::Status CreateToken(const TokenRecord& token) override;
  absl::StatusOr<std::vector<TokenRecord>> ListTokens() override;
  absl::Status DeleteToken(absl::string_view token_hash) override;

  absl::StatusOr<NodeRecord> EnrollNode(const EnrollRequest& request,
                                        IssueCertificate issue) override;
  absl::StatusOr<NodeRecord> GetNode(absl::string_view id) override;
  absl::StatusOr<NodeRecord> FindNodeByKey(absl::string_view key) override;
  absl::StatusOr<std::vector<NodeRecord>> ListNodes(wire::NodeKind kind) override;
  absl::Status RevokeNode(absl::string_view id, absl::Time now) override;
  absl::Status RemoveNode(absl::string_view id, absl::Time now) override;
  absl::Status SetNodeCertificateSerial(absl::string_view id, absl::string_view serial) override;
  absl::Status RecordNodeSeen(absl::string_view id, absl::string_view endpoint,
                              absl::Time now) override;
  absl::StatusOr<bool> IsRevoked(absl::string_view serial) override;

  absl::StatusOr<wire::Resource> AddResource(const wire::Resource& resource) override;
  absl::StatusOr<wire::Resource> UpdateResource(const ResourceUpdate& update) override;
  absl::Status RemoveResource(absl::string_view name) override;
  absl::StatusOr<wire::Resource> GetResource(absl::string_view name) override;
  absl::StatusOr<std::vector<wire::Resource>> ListResources() override;

  absl::Status PutCertificate(const CertificateRecord& cert) override;
  absl::StatusOr<CertificateRecord> GetCertificate(absl::string_view resource) override;
  absl::StatusOr<std::vector<CertificateRecord>> ListCertificatesExpiringBefore(
      absl::Time t) override;

  absl::StatusOr<bool> AppendAuditBatch(absl::string_view site_id, const wire::AuditBatch& batch,
                                        absl::Time now) override;
  absl::StatusOr<std::vector<StoredAuditEvent>> QueryAudit(const AuditQuery& query) override;
  absl::StatusOr<int64_t> PruneAudit(absl::Time older_than) override;

 private:
  class Stmt;
  class Txn;

  SqliteStore(sqlite3* db, std::string path, SqliteStoreOptions options);

  absl::Status Configure();
  absl::Status Migrate();
  absl::Status Exec(const char* sql);
  absl::Status SqlError(absl::string_view what) const;
  absl::StatusOr<uint64_t> ReadVersion();
  // Bump adds one to the version inside the open transaction; *new_version gets it, and
  // version_ takes it once the transaction commits.
  absl::Status Bump(uint64_t* new_version);
  absl::StatusOr<std::string> NewNodeId(wire::NodeKind kind);
  absl::StatusOr<uint32_t> AllocateAddress(const char* table, const base::IpPrefix& range,
                                           absl::string_view what);
  absl::StatusOr<NodeRecord> ReadNode(const char* where, absl::string_view value);
  absl::StatusOr<wire::Resource> ReadResource(absl::string_view name);
  // WriteResourceParts writes domains, targets and access of |r| (existing ones deleted).
  absl::Status WriteResourceParts(const wire::Resource& r);
  absl::Status CheckTargets(const wire::Resource& r);
  absl::Status CheckDomainsFree(const wire::Resource& r);
  static NodeRecord NodeFromRow(const Stmt& s);
  static CertificateRecord CertFromRow(const Stmt& s);

  sqlite3* db_;
  std::string path_;
  SqliteStoreOptions options_;
  uint64_t version_ = 0;
  int migrations_applied_ = 0;
};

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_SQLITE_STORE_H_
