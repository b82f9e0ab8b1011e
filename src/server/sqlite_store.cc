// sqlite_store.cc: SqliteStore: the schema and its migrations, then one section per kind of
// record. Every value reaches SQLite through a bound parameter; the only SQL built at run time
// is PRAGMA user_version with the code's own schema number.
#include "server/sqlite_store.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/errno_text.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "control/validate.h"

namespace p2proxy::server {
namespace {

using absl::StrCat;

constexpr size_t kKeyLen = 32;
constexpr size_t kHashLen = 32;
constexpr size_t kMaxMetaValueLen = 64 * 1024;
constexpr size_t kMaxSerialLen = 128;
constexpr size_t kMaxEndpointLen = 64;
constexpr int kMaxIdAttempts = 8;

// ---- Schema ------------------------------------------------------------------------------------
//
// kMigrations[i] takes the schema from version i to i + 1 (PRAGMA user_version). Append new
// steps; never edit one that has shipped. Each runs in its own transaction with the version
// update, so a crash leaves the database at a step boundary.
//
// Choices the schema encodes:
// - Times are INTEGER milliseconds since 1970; addresses INTEGER (IPv4 in host order), so the
//   lowest free one is one indexed query; kinds are control.proto's enum numbers.
// - A device's user may not be removed while the device exists (no cascade: removing a user
//   should not silently cut off devices); the store refuses and names them. A user's tokens
//   go with the user.
// - A site that is a resource's target may not be removed (resource_targets.site_id refers to
//   it); the store refuses and names the resources.
// - A resource's access (users, roles, path rules) is one serialized wire::Access: it is read
//   and written whole, and nothing refers into it. Grants name users and roles by name and need
//   not exist (deny by default: a grant to nobody grants nothing).
// - Audit events keep control.proto's fields as columns (roles joined with ',', which no name
//   holds), so `sqlite3` can query them. audit_batches makes (site, sequence) stored once.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) STRICT;
CREATE TABLE snapshot_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL CHECK (version >= 0)
) STRICT;
INSERT INTO snapshot_version (id, version) VALUES (1, 0);
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE roles (
  name TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE user_roles (
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  role TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
  PRIMARY KEY (user, role)
) STRICT;
CREATE INDEX user_roles_role ON user_roles(role);
CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),
  name TEXT NOT NULL,
  user TEXT REFERENCES users(name),
  wg_public_key BLOB NOT NULL UNIQUE CHECK (length(wg_public_key) = 32),
  address INTEGER NOT NULL UNIQUE,
  cert_serial TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER,
  last_seen_ms INTEGER,
  last_endpoint TEXT NOT NULL DEFAULT '',
  UNIQUE (kind, name),
  CHECK ((kind = 2) = (user IS NOT NULL))
) STRICT;
CREATE INDEX nodes_user ON nodes(user);
CREATE TABLE tokens (
  hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),
  site_name TEXT,
  user TEXT REFERENCES users(name) ON DELETE CASCADE,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms INTEGER,
  node_id TEXT,
  CHECK ((kind = 1 AND site_name IS NOT NULL AND user IS NULL) OR
         (kind = 2 AND user IS NOT NULL AND site_name IS NULL))
) STRICT;
CREATE INDEX tokens_user ON tokens(user);
CREATE TABLE revocations (
  serial TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  revoked_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE resources (
  name TEXT PRIMARY KEY,
  address INTEGER NOT NULL UNIQUE,
  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
  access BLOB NOT NULL
) STRICT;
CREATE TABLE resource_domains (
  domain TEXT PRIMARY KEY,
  resource TEXT NOT NULL REFERENCES resources(name) ON DELETE CASCADE,
  position INTEGER NOT NULL
) STRICT;
CREATE INDEX resource_domains_resource ON resource_domains(resource, position);
CREATE TABLE resource_targets (
  resource TEXT NOT NULL REFERENCES resources(name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  site_id TEXT NOT NULL REFERENCES nodes(id),
  address TEXT NOT NULL,
  PRIMARY KEY (resource, site_id)
) STRICT;
CREATE INDEX resource_targets_site ON resource_targets(site_id);
CREATE TABLE certificates (
  resource TEXT PRIMARY KEY REFERENCES resources(name) ON DELETE CASCADE,
  chain_pem TEXT NOT NULL,
  key_pem TEXT NOT NULL,
  serial TEXT NOT NULL,
  not_after_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX certificates_not_after ON certificates(not_after_ms);
CREATE TABLE audit_batches (
  site_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  stored_ms INTEGER NOT NULL,
  PRIMARY KEY (site_id, sequence)
) STRICT;
CREATE INDEX audit_batches_stored ON audit_batches(stored_ms);
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  site_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  stored_ms INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  resource TEXT NOT NULL,
  peer_key BLOB NOT NULL,
  peer TEXT NOT NULL,
  user TEXT NOT NULL,
  roles TEXT NOT NULL,
  method TEXT NOT NULL,
  host TEXT NOT NULL,
  path TEXT NOT NULL,
  status INTEGER NOT NULL,
  bytes_in INTEGER NOT NULL,
  bytes_out INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  allowed INTEGER NOT NULL,
  reason TEXT NOT NULL
) STRICT;
CREATE INDEX audit_events_time ON audit_events(time_ms, id);
CREATE INDEX audit_events_user ON audit_events(user, time_ms);
CREATE INDEX audit_events_resource ON audit_events(resource, time_ms);
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion, "one migration step per version");

// ---- Small helpers -----------------------------------------------------------------------------

absl::Status Invalid(absl::string_view m) { return MakeStoreError(StoreError::kInvalid, m); }
absl::Status NotFound(absl::string_view m) { return MakeStoreError(StoreError::kNotFound, m); }
absl::Status Exists(absl::string_view m) { return MakeStoreError(StoreError::kAlreadyExists, m); }

int64_t ToMs(absl::Time t) {
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  return absl::ToUnixMillis(t);
}
absl::Time FromMs(int64_t ms) { return absl::FromUnixMillis(ms); }

std::string Q(absl::string_view name) { return StrCat("'", name, "'"); }  // validated names only

std::string KindName(wire::NodeKind kind) {
  return kind == wire::NODE_KIND_SITE ? "site" : kind == wire::NODE_KIND_CLIENT ? "device" : "node";
}

std::string AddressText(uint32_t a) {
  return base::IpAddress::V4(static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
                             static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a))
      .ToString();
}

absl::Status CheckId(absl::string_view what, absl::string_view id) {
  if (id.empty()) return Invalid(StrCat(what, ": missing"));
  if (id.size() > control::kMaxIdLen) {
    return Invalid(StrCat(what, ": ", id.size(), " bytes; an id is at most ", control::kMaxIdLen));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return Invalid(StrCat(what, ": not an id (letters, digits, '.', '_', '-')"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNodeKind(absl::string_view what, wire::NodeKind kind) {
  if (kind != wire::NODE_KIND_SITE && kind != wire::NODE_KIND_CLIENT) {
    return Invalid(StrCat(what, ": kind ", static_cast<int>(kind), " is neither SITE nor CLIENT"));
  }
  return absl::OkStatus();
}

// Usable is the range's addresses a node or resource may get: all but the network address,
// the second (the server's, or the client's resolver) and the broadcast address.
struct Usable {
  uint32_t first = 0;
  uint32_t last = 0;
  bool empty = true;
};

Usable UsableOf(const base::IpPrefix& range) {
  Usable u;
  if (range.address.family != base::IpAddress::kV4 || range.length > 30) return u;
  const uint32_t net = range.address.v4();
  const uint64_t size = uint64_t{1} << (32 - range.length);
  u.first = net + 2;
  u.last = static_cast<uint32_t>(net + size - 2);
  u.empty = u.first > u.last;
  return u;
}

}  // namespace

// ---- Stmt and Txn ------------------------------------------------------------------------------

// Stmt is one prepared statement, finalized on destruction. Bind errors are kept and reported
// by Step, so call sites bind without checking each.
class SqliteStore::Stmt {
 public:
  Stmt(const SqliteStore& store, const char* sql) : store_(store) {
    rc_ = sqlite3_prepare_v2(store.db_, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Text(int i, absl::string_view v) {
    return Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                                   SQLITE_TRANSIENT));
  }
  Stmt& Blob(int i, absl::string_view v) {
    return Check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                                   SQLITE_TRANSIENT));
  }
  Stmt& Int(int i, int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v)); }
  Stmt& Null(int i) { return Check(sqlite3_bind_null(stmt_, i)); }
  Stmt& OptText(int i, const std::optional<std::string>& v) {
    return v ? Text(i, *v) : Null(i);
  }

  // Step runs the statement one step: true with a row to read, false when done.
  absl::StatusOr<bool> Step() {
    if (rc_ != SQLITE_OK) return store_.SqlError("prepare");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return store_.SqlError("step");
  }
  // Run steps a statement that returns no rows.
  absl::Status Run() {
    P2P_ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return absl::OkStatus();
  }

  int64_t ColInt(int i) const { return sqlite3_column_int64(stmt_, i); }
  bool ColNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  std::string ColText(int i) const {
    const void* p = sqlite3_column_blob(stmt_, i);
    const int n = sqlite3_column_bytes(stmt_, i);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
  }
  std::optional<absl::Time> ColTime(int i) const {
    if (ColNull(i)) return std::nullopt;
    return FromMs(ColInt(i));
  }

 private:
  Stmt& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }

  const SqliteStore& store_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// Txn is one write transaction: BEGIN IMMEDIATE takes the write lock at once, so the checks a
// write makes before it writes stay true until it commits. Rolled back unless committed.
class SqliteStore::Txn {
 public:
  explicit Txn(SqliteStore& store) : store_(store) {}
  ~Txn() {
    if (open_) sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  absl::Status Begin() {
    P2P_RETURN_IF_ERROR(store_.Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return absl::OkStatus();
  }
  // Bump adds one to the snapshot version, taken into the store's cache at Commit.
  absl::Status Bump() { return store_.Bump(&new_version_); }
  absl::Status Commit() {
    P2P_RETURN_IF_ERROR(store_.Exec("COMMIT"));
    open_ = false;
    if (new_version_ != 0) store_.version_ = new_version_;
    return absl::OkStatus();
  }

 private:
  SqliteStore& store_;
  bool open_ = false;
  uint64_t new_version_ = 0;
};

// ---- Open, configuration, migrations -------------------------------------------------------

namespace {

// PrepareFile creates |path| with mode 0600 if it is missing, and narrows an existing database
// (and its -wal and -shm files) to 0600: they hold private keys.
absl::Status PrepareFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeStoreError(StoreError::kInternal,
                          StrCat("store: cannot open ", path, ": ", base::ErrnoText(errno)));
  }
  struct stat st;
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status = MakeStoreError(StoreError::kInternal,
                            StrCat("store: cannot stat ", path, ": ", base::ErrnoText(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = MakeStoreError(StoreError::kInternal, StrCat("store: ", path, " is not a file"));
  } else if ((st.st_mode & 0077) != 0) {
    P2P_LOG(kWarn, "store.mode_narrowed").Kv("path", path);
    if (fchmod(fd, 0600) != 0) {
      status = MakeStoreError(StoreError::kInternal, StrCat("store: cannot chmod 0600 ", path,
                                                            ": ", base::ErrnoText(errno)));
    }
  }
  close(fd);
  P2P_RETURN_IF_ERROR(status);
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string side = path + suffix;
    if (stat(side.c_str(), &st) == 0 && (st.st_mode & 0077) != 0 &&
        chmod(side.c_str(), 0600) != 0) {
      return MakeStoreError(StoreError::kInternal, StrCat("store: cannot chmod 0600 ", side, ": ",
                                                          base::ErrnoText(errno)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SqliteStore::SqliteStore(sqlite3* db, std::string path, SqliteStoreOptions options)
    : db_(db), path_(std::move(path)), options_(std::move(options)) {}

SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               SqliteStoreOptions options) {
  const Usable nodes = UsableOf(options.node_range);
  const Usable resources = UsableOf(options.resource_range);
  if (nodes.empty) {
    return Invalid(StrCat("store: node range ", options.node_range.ToString(),
                          " is not an IPv4 prefix of /30 or larger"));
  }
  if (resources.empty) {
    return Invalid(StrCat("store: resource range ", options.resource_range.ToString(),
                          " is not an IPv4 prefix of /30 or larger"));
  }
  if (path.empty()) return Invalid("store: database path missing");
  P2P_RETURN_IF_ERROR(PrepareFile(path));
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return MakeStoreError(StoreError::kInternal, StrCat("store: cannot open ", path, ": ", why));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path, std::move(options)));
  P2P_RETURN_IF_ERROR(store->Configure());
  P2P_RETURN_IF_ERROR(store->Migrate());
  P2P_ASSIGN_OR_RETURN(store->version_, store->ReadVersion());
  return store;
}

absl::Status SqliteStore::SqlError(absl::string_view what) const {
  const int code = sqlite3_extended_errcode(db_);
  std::string message = StrCat("store: ", what, " failed: ", sqlite3_errmsg(db_), " (", path_, ")");
  if ((code & 0xff) == SQLITE_NOTADB) {
    message = StrCat("store: ", path_, " is not a p2proxy-server database (", sqlite3_errmsg(db_),
                     ")");
  }
  return MakeStoreError(StoreError::kInternal, message);
}

absl::Status SqliteStore::Exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqlError(sql);
  return absl::OkStatus();
}

absl::Status SqliteStore::Configure() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, options_.busy_timeout_ms);
  // Deleted rows (token hashes, keys of removed resources) are overwritten, not left in free
  // pages.
  P2P_RETURN_IF_ERROR(Exec("PRAGMA secure_delete = ON"));
  P2P_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON"));
  {
    // WAL: readers (the server's snapshot builder, an operator's sqlite3) do not block the
    // writer, and a commit is one append to the WAL.
    Stmt wal(*this, "PRAGMA journal_mode = WAL");
    P2P_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.ColText(0) != "wal") {
      return MakeStoreError(StoreError::kInternal,
                            StrCat("store: ", path_, ": cannot switch to WAL journal mode"));
    }
  }
  // synchronous=FULL: in WAL mode NORMAL survives a crash of the process (kill -9) but may lose
  // the last commits on power loss, since it fsyncs the WAL only at checkpoints. An
  // acknowledged admin write (a resource added, a device revoked) must not silently come back
  // undone after a reboot, so every commit fsyncs the WAL. Admin writes are rare; the cost is
  // one fsync each.
  P2P_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL"));
  return absl::OkStatus();
}

absl::Status SqliteStore::Migrate() {
  for (;;) {
    Txn txn(*this);
    P2P_RETURN_IF_ERROR(txn.Begin());
    int64_t current = 0;
    {
      Stmt s(*this, "PRAGMA user_version");
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) current = s.ColInt(0);
    }
    if (current > kSchemaVersion) {
      return MakeStoreError(
          StoreError::kNewerSchema,
          StrCat("store: ", path_, " has schema version ", current, ", newer than the ",
                 kSchemaVersion, " this p2proxy-server knows; run a newer p2proxy-server "
                 "(or restore a backup made by this one)"));
    }
    if (current < 0) {
      return MakeStoreError(StoreError::kInternal,
                            StrCat("store: ", path_, " has schema version ", current));
    }
    if (current == kSchemaVersion) return txn.Commit();
    P2P_RETURN_IF_ERROR(Exec(kMigrations[current]));
    // PRAGMA takes no bound parameters; the number is the code's own.
    const std::string set_version = StrCat("PRAGMA user_version = ", current + 1);
    P2P_RETURN_IF_ERROR(Exec(set_version.c_str()));
    P2P_RETURN_IF_ERROR(txn.Commit());
    ++migrations_applied_;
    P2P_LOG(kInfo, "store.migrated").Kv("path", path_).Kv("schema_version", current + 1);
  }
}

absl::Status SqliteStore::IntegrityCheck() {
  Stmt s(*this, "PRAGMA integrity_check");
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeStoreError(StoreError::kInternal, "store: integrity_check gave no answer");
  const std::string first = s.ColText(0);
  if (first != "ok") {
    return MakeStoreError(StoreError::kInternal,
                          StrCat("store: ", path_, " is damaged: ", first));
  }
  return absl::OkStatus();
}

// ---- Version and meta ------------------------------------------------------------------------

absl::StatusOr<uint64_t> SqliteStore::ReadVersion() {
  Stmt s(*this, "SELECT version FROM snapshot_version WHERE id = 1");
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return MakeStoreError(StoreError::kInternal,
                          StrCat("store: ", path_, ": the snapshot version is missing"));
  }
  return static_cast<uint64_t>(s.ColInt(0));
}

absl::Status SqliteStore::Bump(uint64_t* new_version) {
  Stmt s(*this, "UPDATE snapshot_version SET version = version + 1 WHERE id = 1 "
                "RETURNING version");
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return MakeStoreError(StoreError::kInternal,
                          StrCat("store: ", path_, ": the snapshot version is missing"));
  }
  *new_version = static_cast<uint64_t>(s.ColInt(0));
  return s.Run();  // finish the statement so RETURNING's row is complete
}

absl::StatusOr<uint64_t> SqliteStore::BumpVersion() {
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  P2P_RETURN_IF_ERROR(txn.Bump());
  P2P_RETURN_IF_ERROR(txn.Commit());
  return version_;
}

namespace {
absl::Status CheckMetaKey(absl::string_view key) { return CheckId("meta key", key); }
}  // namespace

absl::StatusOr<std::optional<std::string>> SqliteStore::GetMeta(absl::string_view key) {
  P2P_RETURN_IF_ERROR(CheckMetaKey(key));
  Stmt s(*this, "SELECT value FROM meta WHERE key = ?1");
  s.Text(1, key);
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.ColText(0));
}

absl::Status SqliteStore::SetMeta(absl::string_view key, absl::string_view value) {
  P2P_RETURN_IF_ERROR(CheckMetaKey(key));
  if (value.size() > kMaxMetaValueLen) {
    return Invalid(StrCat("meta ", Q(key), ": value of ", value.size(), " bytes; at most ",
                          kMaxMetaValueLen));
  }
  Stmt s(*this, "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  s.Text(1, key).Blob(2, value);
  return s.Run();
}

// ---- Users and roles ---------------------------------------------------------------------------

absl::StatusOr<UserRecord> SqliteStore::AddUser(absl::string_view name, absl::Time now) {
  P2P_RETURN_IF_ERROR(ValidateName("user", name));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT 1 FROM users WHERE name = ?1");
    s.Text(1, name);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return Exists(StrCat("user ", Q(name), " exists"));
  }
  Stmt ins(*this, "INSERT INTO users (name, created_ms) VALUES (?1, ?2)");
  ins.Text(1, name).Int(2, ToMs(now));
  P2P_RETURN_IF_ERROR(ins.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  P2P_RETURN_IF_ERROR(txn.Commit());
  return UserRecord{std::string(name), FromMs(ToMs(now)), {}};
}

absl::Status SqliteStore::RemoveUser(absl::string_view name) {
  P2P_RETURN_IF_ERROR(ValidateName("user", name));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT 1 FROM users WHERE name = ?1");
    s.Text(1, name);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("user ", Q(name), " does not exist"));
  }
  {
    Stmt s(*this, "SELECT name, id FROM nodes WHERE user = ?1 ORDER BY name");
    s.Text(1, name);
    std::vector<std::string> devices;
    for (;;) {
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      devices.push_back(StrCat(Q(s.ColText(0)), " (", s.ColText(1), ")"));
    }
    if (!devices.empty()) {
      return MakeStoreError(StoreError::kInUse,
                            StrCat("user ", Q(name), " owns devices ", absl::StrJoin(devices, ", "),
                                   "; remove them first"));
    }
  }
  Stmt del(*this, "DELETE FROM users WHERE name = ?1");
  del.Text(1, name);
  P2P_RETURN_IF_ERROR(del.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

absl::StatusOr<UserRecord> SqliteStore::GetUser(absl::string_view name) {
  P2P_RETURN_IF_ERROR(ValidateName("user", name));
  UserRecord user;
  {
    Stmt s(*this, "SELECT name, created_ms FROM users WHERE name = ?1");
    s.Text(1, name);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("user ", Q(name), " does not exist"));
    user.name = s.ColText(0);
    user.created = FromMs(s.ColInt(1));
  }
  Stmt s(*this, "SELECT role FROM user_roles WHERE user = ?1 ORDER BY role");
  s.Text(1, name);
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    user.roles.push_back(s.ColText(0));
  }
  return user;
}

absl::StatusOr<std::vector<UserRecord>> SqliteStore::ListUsers() {
  std::vector<UserRecord> users;
  absl::flat_hash_map<std::string, size_t> index;
  {
    Stmt s(*this, "SELECT name, created_ms FROM users ORDER BY name");
    for (;;) {
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      index[s.ColText(0)] = users.size();
      users.push_back(UserRecord{s.ColText(0), FromMs(s.ColInt(1)), {}});
    }
  }
  Stmt s(*this, "SELECT user, role FROM user_roles ORDER BY user, role");
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto it = index.find(s.ColText(0));
    if (it != index.end()) users[it->second].roles.push_back(s.ColText(1));
  }
  return users;
}

absl::StatusOr<RoleRecord> SqliteStore::AddRole(absl::string_view name, absl::Time now) {
  P2P_RETURN_IF_ERROR(ValidateName("role", name));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT 1 FROM roles WHERE name = ?1");
    s.Text(1, name);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return Exists(StrCat("role ", Q(name), " exists"));
  }
  Stmt ins(*this, "INSERT INTO roles (name, created_ms) VALUES (?1, ?2)");
  ins.Text(1, name).Int(2, ToMs(now));
  P2P_RETURN_IF_ERROR(ins.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  P2P_RETURN_IF_ERROR(txn.Commit());
  return RoleRecord{std::string(name), FromMs(ToMs(now))};
}

absl::Status SqliteStore::RemoveRole(absl::string_view name) {
  P2P_RETURN_IF_ERROR(ValidateName("role", name));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  Stmt del(*this, "DELETE FROM roles WHERE name = ?1");
  del.Text(1, name);
  P2P_RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) return NotFound(StrCat("role ", Q(name), " does not exist"));
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

absl::StatusOr<std::vector<RoleRecord>> SqliteStore::ListRoles() {
  std::vector<RoleRecord> roles;
  Stmt s(*this, "SELECT name, created_ms FROM roles ORDER BY name");
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    roles.push_back(RoleRecord{s.ColText(0), FromMs(s.ColInt(1))});
  }
  return roles;
}

absl::Status SqliteStore::GrantRole(absl::string_view user, absl::string_view role) {
  P2P_RETURN_IF_ERROR(ValidateName("user", user));
  P2P_RETURN_IF_ERROR(ValidateName("role", role));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1), "
                  "EXISTS (SELECT 1 FROM roles WHERE name = ?2), "
                  "EXISTS (SELECT 1 FROM user_roles WHERE user = ?1 AND role = ?2)");
    s.Text(1, user).Text(2, role);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    (void)row;
    if (s.ColInt(0) == 0) return NotFound(StrCat("user ", Q(user), " does not exist"));
    if (s.ColInt(1) == 0) return NotFound(StrCat("role ", Q(role), " does not exist"));
    if (s.ColInt(2) != 0) {
      return Exists(StrCat("user ", Q(user), " has role ", Q(role), " already"));
    }
  }
  Stmt ins(*this, "INSERT INTO user_roles (user, role) VALUES (?1, ?2)");
  ins.Text(1, user).Text(2, role);
  P2P_RETURN_IF_ERROR(ins.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

absl::Status SqliteStore::RevokeRole(absl::string_view user, absl::string_view role) {
  P2P_RETURN_IF_ERROR(ValidateName("user", user));
  P2P_RETURN_IF_ERROR(ValidateName("role", role));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  Stmt del(*this, "DELETE FROM user_roles WHERE user = ?1 AND role = ?2");
  del.Text(1, user).Text(2, role);
  P2P_RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) {
    return NotFound(StrCat("user ", Q(user), " does not have role ", Q(role)));
  }
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

// ---- Tokens --------------------------------------------------------------------------------

absl::Status SqliteStore::CreateToken(const TokenRecord& token) {
  if (token.token_hash.size() != kHashLen) {
    return Invalid(StrCat("token: hash of ", token.token_hash.size(),
                          " bytes; a SHA-256 hash (HashToken) is ", kHashLen));
  }
  P2P_RETURN_IF_ERROR(CheckNodeKind("token", token.kind));
  const bool site = token.kind == wire::NODE_KIND_SITE;
  P2P_RETURN_IF_ERROR(ValidateName(site ? "token: site" : "token: user", token.bound_to));
  if (token.expires <= token.created) {
    return Invalid(StrCat("token: expires (", absl::FormatTime(token.expires),
                          ") is not after created (", absl::FormatTime(token.created), ")"));
  }
  if (token.used || !token.node_id.empty()) return Invalid("token: a new token cannot be used");
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT 1 FROM tokens WHERE hash = ?1");
    s.Blob(1, token.token_hash);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return Exists("token: a token with the same secret exists; make a new secret");
  }
  if (site) {
    Stmt s(*this, "SELECT id FROM nodes WHERE kind = 1 AND name = ?1");
    s.Text(1, token.bound_to);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      return Exists(StrCat("token: site ", Q(token.bound_to), " exists (", s.ColText(0),
                           "); remove it first or choose another name"));
    }
  } else {
    Stmt s(*this, "SELECT 1 FROM users WHERE name = ?1");
    s.Text(1, token.bound_to);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("token: user ", Q(token.bound_to), " does not exist"));
  }
  Stmt ins(*this, "INSERT INTO tokens (hash, kind, site_name, user, created_ms, expires_ms) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  ins.Blob(1, token.token_hash).Int(2, token.kind);
  if (site) {
    ins.Text(3, token.bound_to).Null(4);
  } else {
    ins.Null(3).Text(4, token.bound_to);
  }
  ins.Int(5, ToMs(token.created)).Int(6, ToMs(token.expires));
  P2P_RETURN_IF_ERROR(ins.Run());
  return txn.Commit();
}

absl::StatusOr<std::vector<TokenRecord>> SqliteStore::ListTokens() {
  std::vector<TokenRecord> tokens;
  Stmt s(*this, "SELECT hash, kind, coalesce(site_name, user), created_ms, expires_ms, used_ms, "
                "coalesce(node_id, '') FROM tokens ORDER BY created_ms, hash");
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    TokenRecord t;
    t.token_hash = s.ColText(0);
    t.kind = static_cast<wire::NodeKind>(s.ColInt(1));
    t.bound_to = s.ColText(2);
    t.created = FromMs(s.ColInt(3));
    t.expires = FromMs(s.ColInt(4));
    t.used = s.ColTime(5);
    t.node_id = s.ColText(6);
    tokens.push_back(std::move(t));
  }
  return tokens;
}

absl::Status SqliteStore::DeleteToken(absl::string_view token_hash) {
  if (token_hash.size() != kHashLen) {
    return Invalid(StrCat("token: hash of ", token_hash.size(), " bytes; a SHA-256 hash is ",
                          kHashLen));
  }
  Stmt del(*this, "DELETE FROM tokens WHERE hash = ?1");
  del.Blob(1, token_hash);
  P2P_RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) return NotFound("token: no such token");
  return absl::OkStatus();
}

// ---- Nodes -----------------------------------------------------------------------------------

#define P2P_NODE_COLUMNS                                                                 \
  "id, kind, name, coalesce(user, ''), wg_public_key, address, cert_serial, created_ms, " \
  "revoked_ms, last_seen_ms, last_endpoint"

absl::StatusOr<std::string> SqliteStore::NewNodeId(wire::NodeKind kind) {
  static constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";  // RFC 4648, lower case
  for (int attempt = 0; attempt < kMaxIdAttempts; ++attempt) {
    uint8_t bytes[10];
    if (options_.random) {
      options_.random(bytes, sizeof(bytes));
    } else {
      RAND_bytes(bytes, sizeof(bytes));
    }
    std::string id = kind == wire::NODE_KIND_SITE ? "s-" : "d-";
    for (uint8_t b : bytes) id.push_back(kBase32[b & 31]);
    Stmt s(*this, "SELECT 1 FROM nodes WHERE id = ?1");
    s.Text(1, id);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return id;
  }
  return MakeStoreError(StoreError::kInternal,
                        "store: no unused node id after several random tries");
}

absl::StatusOr<uint32_t> SqliteStore::AllocateAddress(const char* table,
                                                      const base::IpPrefix& range,
                                                      absl::string_view what) {
  const Usable usable = UsableOf(range);
  // The lowest usable address, if free; else the lowest address just above a taken one that is
  // free itself. Both queries walk the UNIQUE index on address.
  static constexpr const char* kNodes =
      "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM nodes WHERE address = ?1) THEN ?1 ELSE "
      "(SELECT min(a.address + 1) FROM nodes a WHERE a.address BETWEEN ?1 AND ?2 AND NOT EXISTS "
      "(SELECT 1 FROM nodes b WHERE b.address = a.address + 1)) END";
  static constexpr const char* kResources =
      "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM resources WHERE address = ?1) THEN ?1 ELSE "
      "(SELECT min(a.address + 1) FROM resources a WHERE a.address BETWEEN ?1 AND ?2 AND NOT "
      "EXISTS (SELECT 1 FROM resources b WHERE b.address = a.address + 1)) END";
  Stmt s(*this, absl::string_view(table) == "nodes" ? kNodes : kResources);
  s.Int(1, usable.first).Int(2, usable.last);
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.ColNull(0) || s.ColInt(0) > usable.last) {
    return MakeStoreError(StoreError::kExhausted,
                          StrCat(what, ": no free address left in ", range.ToString(), " (",
                                 uint64_t{usable.last} - usable.first + 1,
                                 " usable); remove unused ones or configure a larger range"));
  }
  return static_cast<uint32_t>(s.ColInt(0));
}

absl::StatusOr<NodeRecord> SqliteStore::EnrollNode(const EnrollRequest& request,
                                                   IssueCertificate issue) {
  if (request.token_hash.size() != kHashLen) {
    return Invalid(StrCat("enroll: token hash of ", request.token_hash.size(),
                          " bytes; a SHA-256 hash (HashToken) is ", kHashLen));
  }
  P2P_RETURN_IF_ERROR(CheckNodeKind("enroll", request.kind));
  if (request.wireguard_public_key.size() != kKeyLen) {
    return Invalid(StrCat("enroll: wireguard_public_key: ", request.wireguard_public_key.size(),
                          " bytes; a WireGuard key is ", kKeyLen));
  }
  if (!request.requested_name.empty()) {
    P2P_RETURN_IF_ERROR(ValidateName("enroll: requested_name", request.requested_name));
  }
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());

  // The token.
  NodeRecord node;
  node.kind = request.kind;
  {
    Stmt s(*this, "SELECT kind, coalesce(site_name, ''), coalesce(user, ''), expires_ms, "
                  "used_ms FROM tokens WHERE hash = ?1");
    s.Blob(1, request.token_hash);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return MakeStoreError(StoreError::kTokenUnknown,
                            "enroll: the enrollment token is unknown; ask the administrator for "
                            "a new one (`p2proxy-server admin token create`)");
    }
    const auto token_kind = static_cast<wire::NodeKind>(s.ColInt(0));
    if (!s.ColNull(4)) {
      return MakeStoreError(StoreError::kTokenUsed,
                            StrCat("enroll: the enrollment token was used already (",
                                   absl::FormatTime(FromMs(s.ColInt(4))),
                                   "); a token enrolls one node, ask for a new one"));
    }
    if (ToMs(request.now) >= s.ColInt(3)) {
      return MakeStoreError(StoreError::kTokenExpired,
                            StrCat("enroll: the enrollment token expired at ",
                                   absl::FormatTime(FromMs(s.ColInt(3))), "; ask for a new one"));
    }
    if (token_kind != request.kind) {
      return MakeStoreError(StoreError::kTokenWrongKind,
                            StrCat("enroll: the token is for a ", KindName(token_kind),
                                   ", not a ", KindName(request.kind)));
    }
    if (request.kind == wire::NODE_KIND_SITE) {
      node.name = s.ColText(1);
      if (!request.requested_name.empty() && request.requested_name != node.name) {
        return Invalid(StrCat("enroll: the token is for site ", Q(node.name), ", not ",
                              Q(request.requested_name)));
      }
    } else {
      node.user = s.ColText(2);
      node.name = request.requested_name;
    }
  }
  // The name and the key.
  if (!node.name.empty()) {
    Stmt s(*this, "SELECT id FROM nodes WHERE kind = ?1 AND name = ?2");
    s.Int(1, node.kind).Text(2, node.name);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      return MakeStoreError(StoreError::kNameTaken,
                            StrCat("enroll: ", KindName(node.kind), " name ", Q(node.name),
                                   " belongs to node ", s.ColText(0)));
    }
  }
  {
    Stmt s(*this, "SELECT id FROM nodes WHERE wg_public_key = ?1");
    s.Blob(1, request.wireguard_public_key);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      return MakeStoreError(StoreError::kKeyTaken,
                            StrCat("enroll: the WireGuard public key belongs to node ",
                                   s.ColText(0), "; each node needs its own key"));
    }
  }
  P2P_ASSIGN_OR_RETURN(node.id, NewNodeId(node.kind));
  if (node.name.empty()) node.name = node.id;
  P2P_ASSIGN_OR_RETURN(const uint32_t address,
                       AllocateAddress("nodes", options_.node_range, "enroll"));
  node.address = AddressText(address);
  node.wireguard_public_key = request.wireguard_public_key;
  node.created = FromMs(ToMs(request.now));

  // The certificate, then the rows.
  P2P_ASSIGN_OR_RETURN(node.certificate_serial, issue(node));
  if (node.certificate_serial.empty() || node.certificate_serial.size() > kMaxSerialLen) {
    return MakeStoreError(StoreError::kInternal,
                          "enroll: the issued certificate serial is empty or too long");
  }
  Stmt ins(*this, "INSERT INTO nodes (id, kind, name, user, wg_public_key, address, cert_serial, "
                  "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  ins.Text(1, node.id).Int(2, node.kind).Text(3, node.name);
  if (node.user.empty()) {
    ins.Null(4);
  } else {
    ins.Text(4, node.user);
  }
  ins.Blob(5, node.wireguard_public_key).Int(6, address).Text(7, node.certificate_serial);
  ins.Int(8, ToMs(request.now));
  P2P_RETURN_IF_ERROR(ins.Run());
  Stmt use(*this, "UPDATE tokens SET used_ms = ?2, node_id = ?3 WHERE hash = ?1");
  use.Blob(1, request.token_hash).Int(2, ToMs(request.now)).Text(3, node.id);
  P2P_RETURN_IF_ERROR(use.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  P2P_RETURN_IF_ERROR(txn.Commit());
  P2P_LOG(kInfo, "store.node_enrolled")
      .Kv("id", node.id)
      .Kv("kind", KindName(node.kind))
      .Kv("address", node.address);
  return node;
}

NodeRecord SqliteStore::NodeFromRow(const Stmt& s) {
  NodeRecord n;
  n.id = s.ColText(0);
  n.kind = static_cast<wire::NodeKind>(s.ColInt(1));
  n.name = s.ColText(2);
  n.user = s.ColText(3);
  n.wireguard_public_key = s.ColText(4);
  n.address = AddressText(static_cast<uint32_t>(s.ColInt(5)));
  n.certificate_serial = s.ColText(6);
  n.created = FromMs(s.ColInt(7));
  n.revoked = s.ColTime(8);
  n.last_seen = s.ColTime(9);
  n.last_endpoint = s.ColText(10);
  return n;
}

absl::StatusOr<NodeRecord> SqliteStore::GetNode(absl::string_view id) {
  P2P_RETURN_IF_ERROR(CheckId("node id", id));
  Stmt s(*this, "SELECT " P2P_NODE_COLUMNS " FROM nodes WHERE id = ?1");
  s.Text(1, id);
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound(StrCat("node ", id, " does not exist"));
  return NodeFromRow(s);
}

absl::StatusOr<NodeRecord> SqliteStore::FindNodeByKey(absl::string_view key) {
  if (key.size() != kKeyLen) {
    return Invalid(StrCat("node key: ", key.size(), " bytes; a WireGuard key is ", kKeyLen));
  }
  Stmt s(*this, "SELECT " P2P_NODE_COLUMNS " FROM nodes WHERE wg_public_key = ?1");
  s.Blob(1, key);
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no node has this WireGuard key");
  return NodeFromRow(s);
}

absl::StatusOr<std::vector<NodeRecord>> SqliteStore::ListNodes(wire::NodeKind kind) {
  std::vector<NodeRecord> nodes;
  Stmt s(*this, "SELECT " P2P_NODE_COLUMNS " FROM nodes WHERE ?1 = 0 OR kind = ?1 "
                "ORDER BY kind, name");
  s.Int(1, kind);
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    nodes.push_back(NodeFromRow(s));
  }
  return nodes;
}

absl::Status SqliteStore::RevokeNode(absl::string_view id, absl::Time now) {
  P2P_RETURN_IF_ERROR(CheckId("node id", id));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  std::string serial;
  {
    Stmt s(*this, "SELECT cert_serial, revoked_ms FROM nodes WHERE id = ?1");
    s.Text(1, id);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("node ", id, " does not exist"));
    if (!s.ColNull(1)) return Exists(StrCat("node ", id, " is revoked already"));
    serial = s.ColText(0);
  }
  Stmt up(*this, "UPDATE nodes SET revoked_ms = ?2 WHERE id = ?1");
  up.Text(1, id).Int(2, ToMs(now));
  P2P_RETURN_IF_ERROR(up.Run());
  Stmt rev(*this, "INSERT OR IGNORE INTO revocations (serial, node_id, revoked_ms) "
                  "VALUES (?1, ?2, ?3)");
  rev.Text(1, serial).Text(2, id).Int(3, ToMs(now));
  P2P_RETURN_IF_ERROR(rev.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

absl::Status SqliteStore::RemoveNode(absl::string_view id, absl::Time now) {
  P2P_RETURN_IF_ERROR(CheckId("node id", id));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  std::string serial;
  std::string name;
  wire::NodeKind kind;
  {
    Stmt s(*this, "SELECT cert_serial, name, kind FROM nodes WHERE id = ?1");
    s.Text(1, id);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("node ", id, " does not exist"));
    serial = s.ColText(0);
    name = s.ColText(1);
    kind = static_cast<wire::NodeKind>(s.ColInt(2));
  }
  if (kind == wire::NODE_KIND_SITE) {
    Stmt s(*this, "SELECT resource FROM resource_targets WHERE site_id = ?1 ORDER BY resource");
    s.Text(1, id);
    std::vector<std::string> resources;
    for (;;) {
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      resources.push_back(Q(s.ColText(0)));
    }
    if (!resources.empty()) {
      return MakeStoreError(
          StoreError::kInUse,
          StrCat("site ", Q(name), " (", id, ") is a target of resource",
                 resources.size() > 1 ? "s " : " ", absl::StrJoin(resources, ", "),
                 "; remove it from their targets (or remove them) first"));
    }
  }
  Stmt rev(*this, "INSERT OR IGNORE INTO revocations (serial, node_id, revoked_ms) "
                  "VALUES (?1, ?2, ?3)");
  rev.Text(1, serial).Text(2, id).Int(3, ToMs(now));
  P2P_RETURN_IF_ERROR(rev.Run());
  Stmt del(*this, "DELETE FROM nodes WHERE id = ?1");
  del.Text(1, id);
  P2P_RETURN_IF_ERROR(del.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

absl::Status SqliteStore::SetNodeCertificateSerial(absl::string_view id,
                                                   absl::string_view serial) {
  P2P_RETURN_IF_ERROR(CheckId("node id", id));
  if (serial.empty() || serial.size() > kMaxSerialLen) {
    return Invalid(StrCat("node ", id, ": certificate serial empty or over ", kMaxSerialLen,
                          " bytes"));
  }
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT revoked_ms FROM nodes WHERE id = ?1");
    s.Text(1, id);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("node ", id, " does not exist"));
    if (!s.ColNull(0)) return Invalid(StrCat("node ", id, " is revoked; it gets no certificate"));
  }
  Stmt up(*this, "UPDATE nodes SET cert_serial = ?2 WHERE id = ?1");
  up.Text(1, id).Text(2, serial);
  P2P_RETURN_IF_ERROR(up.Run());
  return txn.Commit();
}

absl::Status SqliteStore::RecordNodeSeen(absl::string_view id, absl::string_view endpoint,
                                         absl::Time now) {
  P2P_RETURN_IF_ERROR(CheckId("node id", id));
  if (endpoint.size() > kMaxEndpointLen) {
    return Invalid(StrCat("node ", id, ": endpoint of ", endpoint.size(), " bytes"));
  }
  Stmt up(*this, "UPDATE nodes SET last_seen_ms = ?2, last_endpoint = ?3 WHERE id = ?1");
  up.Text(1, id).Int(2, ToMs(now)).Text(3, endpoint);
  P2P_RETURN_IF_ERROR(up.Run());
  if (sqlite3_changes(db_) == 0) return NotFound(StrCat("node ", id, " does not exist"));
  return absl::OkStatus();
}

absl::StatusOr<bool> SqliteStore::IsRevoked(absl::string_view serial) {
  Stmt s(*this, "SELECT 1 FROM revocations WHERE serial = ?1");
  s.Text(1, serial);
  return s.Step();
}

// ---- Resources -------------------------------------------------------------------------------

absl::Status SqliteStore::CheckTargets(const wire::Resource& r) {
  for (int i = 0; i < r.targets_size(); ++i) {
    Stmt s(*this, "SELECT kind FROM nodes WHERE id = ?1");
    s.Text(1, r.targets(i).site_id());
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    const std::string where = StrCat("resource ", Q(r.name()), ": targets[", i, "].site_id ",
                                     r.targets(i).site_id());
    if (!row) return NotFound(StrCat(where, ": no such site"));
    if (s.ColInt(0) != wire::NODE_KIND_SITE) {
      return Invalid(StrCat(where, ": a device, not a site"));
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::CheckDomainsFree(const wire::Resource& r) {
  for (int i = 0; i < r.domains_size(); ++i) {
    Stmt s(*this, "SELECT resource FROM resource_domains WHERE domain = ?1 AND resource != ?2");
    s.Text(1, r.domains(i)).Text(2, r.name());
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      return Exists(StrCat("resource ", Q(r.name()), ": domains[", i, "] ", Q(r.domains(i)),
                           " belongs to resource ", Q(s.ColText(0))));
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteResourceParts(const wire::Resource& r) {
  {
    Stmt s(*this, "DELETE FROM resource_domains WHERE resource = ?1");
    s.Text(1, r.name());
    P2P_RETURN_IF_ERROR(s.Run());
  }
  {
    Stmt s(*this, "DELETE FROM resource_targets WHERE resource = ?1");
    s.Text(1, r.name());
    P2P_RETURN_IF_ERROR(s.Run());
  }
  for (int i = 0; i < r.domains_size(); ++i) {
    Stmt s(*this, "INSERT INTO resource_domains (domain, resource, position) VALUES (?1, ?2, ?3)");
    s.Text(1, r.domains(i)).Text(2, r.name()).Int(3, i);
    P2P_RETURN_IF_ERROR(s.Run());
  }
  for (int i = 0; i < r.targets_size(); ++i) {
    Stmt s(*this, "INSERT INTO resource_targets (resource, position, site_id, address) "
                  "VALUES (?1, ?2, ?3, ?4)");
    s.Text(1, r.name()).Int(2, i).Text(3, r.targets(i).site_id()).Text(4, r.targets(i).address());
    P2P_RETURN_IF_ERROR(s.Run());
  }
  return absl::OkStatus();
}

namespace {

std::string SerializeAccess(const wire::Access& access) {
  std::string out;
  access.SerializeToString(&out);
  return out;
}

}  // namespace

absl::StatusOr<wire::Resource> SqliteStore::AddResource(const wire::Resource& resource) {
  if (!resource.address().empty()) {
    return Invalid(StrCat("resource ", Q(resource.name()),
                          ": address is assigned by the server; leave it empty"));
  }
  P2P_RETURN_IF_ERROR(ValidateResource(resource));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT 1 FROM resources WHERE name = ?1");
    s.Text(1, resource.name());
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) return Exists(StrCat("resource ", Q(resource.name()), " exists"));
  }
  P2P_RETURN_IF_ERROR(CheckDomainsFree(resource));
  P2P_RETURN_IF_ERROR(CheckTargets(resource));
  P2P_ASSIGN_OR_RETURN(const uint32_t address,
                       AllocateAddress("resources", options_.resource_range,
                                       StrCat("resource ", Q(resource.name()))));
  wire::Resource stored = resource;
  stored.set_address(AddressText(address));
  Stmt ins(*this, "INSERT INTO resources (name, address, port, kind, access) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)");
  ins.Text(1, stored.name()).Int(2, address).Int(3, stored.port()).Int(4, stored.kind());
  ins.Blob(5, SerializeAccess(stored.access()));
  P2P_RETURN_IF_ERROR(ins.Run());
  P2P_RETURN_IF_ERROR(WriteResourceParts(stored));
  P2P_RETURN_IF_ERROR(txn.Bump());
  P2P_RETURN_IF_ERROR(txn.Commit());
  return stored;
}

absl::StatusOr<wire::Resource> SqliteStore::UpdateResource(const ResourceUpdate& update) {
  P2P_RETURN_IF_ERROR(ValidateName("resource", update.name));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  P2P_ASSIGN_OR_RETURN(wire::Resource r, ReadResource(update.name));
  if (update.domains) {
    r.clear_domains();
    for (const std::string& d : *update.domains) r.add_domains(d);
  }
  if (update.port) r.set_port(*update.port);
  if (update.kind) r.set_kind(*update.kind);
  if (update.targets) {
    r.clear_targets();
    for (const wire::Target& t : *update.targets) *r.add_targets() = t;
  }
  if (update.access) *r.mutable_access() = *update.access;
  P2P_RETURN_IF_ERROR(ValidateResource(r));
  P2P_RETURN_IF_ERROR(CheckDomainsFree(r));
  P2P_RETURN_IF_ERROR(CheckTargets(r));
  Stmt up(*this, "UPDATE resources SET port = ?2, kind = ?3, access = ?4 WHERE name = ?1");
  up.Text(1, r.name()).Int(2, r.port()).Int(3, r.kind()).Blob(4, SerializeAccess(r.access()));
  P2P_RETURN_IF_ERROR(up.Run());
  P2P_RETURN_IF_ERROR(WriteResourceParts(r));
  if (r.kind() != wire::RESOURCE_KIND_HTTPS) {
    Stmt del(*this, "DELETE FROM certificates WHERE resource = ?1");
    del.Text(1, r.name());
    P2P_RETURN_IF_ERROR(del.Run());
  }
  P2P_RETURN_IF_ERROR(txn.Bump());
  P2P_RETURN_IF_ERROR(txn.Commit());
  return r;
}

absl::Status SqliteStore::RemoveResource(absl::string_view name) {
  P2P_RETURN_IF_ERROR(ValidateName("resource", name));
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  Stmt del(*this, "DELETE FROM resources WHERE name = ?1");
  del.Text(1, name);
  P2P_RETURN_IF_ERROR(del.Run());
  if (sqlite3_changes(db_) == 0) {
    return NotFound(StrCat("resource ", Q(name), " does not exist"));
  }
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

namespace {

// Resources are read in three queries (rows, domains, targets), whatever their number: the
// server reads all of them for every snapshot.
constexpr const char* kResourceRows =
    "SELECT name, address, port, kind, access FROM resources WHERE ?1 IS NULL OR name = ?1 "
    "ORDER BY name";
constexpr const char* kResourceDomains =
    "SELECT resource, domain FROM resource_domains WHERE ?1 IS NULL OR resource = ?1 "
    "ORDER BY resource, position";
constexpr const char* kResourceTargets =
    "SELECT resource, site_id, address FROM resource_targets WHERE ?1 IS NULL OR resource = ?1 "
    "ORDER BY resource, position";

}  // namespace

absl::StatusOr<std::vector<wire::Resource>> SqliteStore::ListResources() {
  std::vector<wire::Resource> out;
  absl::flat_hash_map<std::string, size_t> index;
  {
    Stmt s(*this, kResourceRows);
    s.Null(1);
    for (;;) {
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      wire::Resource r;
      r.set_name(s.ColText(0));
      r.set_address(AddressText(static_cast<uint32_t>(s.ColInt(1))));
      r.set_port(static_cast<uint32_t>(s.ColInt(2)));
      r.set_kind(static_cast<wire::ResourceKind>(s.ColInt(3)));
      if (!r.mutable_access()->ParseFromString(s.ColText(4))) {
        return MakeStoreError(StoreError::kInternal,
                              StrCat("store: resource ", Q(r.name()), ": access is damaged"));
      }
      index[r.name()] = out.size();
      out.push_back(std::move(r));
    }
  }
  {
    Stmt s(*this, kResourceDomains);
    s.Null(1);
    for (;;) {
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      auto it = index.find(s.ColText(0));
      if (it != index.end()) out[it->second].add_domains(s.ColText(1));
    }
  }
  Stmt s(*this, kResourceTargets);
  s.Null(1);
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto it = index.find(s.ColText(0));
    if (it == index.end()) continue;
    wire::Target* t = out[it->second].add_targets();
    t->set_site_id(s.ColText(1));
    t->set_address(s.ColText(2));
  }
  return out;
}

absl::StatusOr<wire::Resource> SqliteStore::ReadResource(absl::string_view name) {
  wire::Resource r;
  {
    Stmt s(*this, kResourceRows);
    s.Text(1, name);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat("resource ", Q(name), " does not exist"));
    r.set_name(s.ColText(0));
    r.set_address(AddressText(static_cast<uint32_t>(s.ColInt(1))));
    r.set_port(static_cast<uint32_t>(s.ColInt(2)));
    r.set_kind(static_cast<wire::ResourceKind>(s.ColInt(3)));
    if (!r.mutable_access()->ParseFromString(s.ColText(4))) {
      return MakeStoreError(StoreError::kInternal,
                            StrCat("store: resource ", Q(name), ": access is damaged"));
    }
  }
  {
    Stmt s(*this, kResourceDomains);
    s.Text(1, name);
    for (;;) {
      P2P_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      r.add_domains(s.ColText(1));
    }
  }
  Stmt s(*this, kResourceTargets);
  s.Text(1, name);
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    wire::Target* t = r.add_targets();
    t->set_site_id(s.ColText(1));
    t->set_address(s.ColText(2));
  }
  return r;
}

absl::StatusOr<wire::Resource> SqliteStore::GetResource(absl::string_view name) {
  P2P_RETURN_IF_ERROR(ValidateName("resource", name));
  return ReadResource(name);
}

// ---- Certificates ----------------------------------------------------------------------------

absl::Status SqliteStore::PutCertificate(const CertificateRecord& cert) {
  P2P_RETURN_IF_ERROR(ValidateName("certificate: resource", cert.resource));
  const std::string who = StrCat("certificate of resource ", Q(cert.resource));
  if (cert.chain_pem.empty() || cert.chain_pem.size() > control::kMaxChainPemLen) {
    return Invalid(StrCat(who, ": chain_pem is empty or over ", control::kMaxChainPemLen,
                          " bytes"));
  }
  if (cert.key_pem.empty() || cert.key_pem.size() > control::kMaxPemLen) {
    return Invalid(StrCat(who, ": key_pem is empty or over ", control::kMaxPemLen, " bytes"));
  }
  if (cert.serial.empty() || cert.serial.size() > kMaxSerialLen) {
    return Invalid(StrCat(who, ": serial is empty or over ", kMaxSerialLen, " bytes"));
  }
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "SELECT kind FROM resources WHERE name = ?1");
    s.Text(1, cert.resource);
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(StrCat(who, ": the resource does not exist"));
    if (s.ColInt(0) != wire::RESOURCE_KIND_HTTPS) {
      return Invalid(StrCat(who, ": the resource is not https"));
    }
  }
  Stmt up(*this, "INSERT INTO certificates (resource, chain_pem, key_pem, serial, not_after_ms) "
                 "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (resource) DO UPDATE SET "
                 "chain_pem = excluded.chain_pem, key_pem = excluded.key_pem, "
                 "serial = excluded.serial, not_after_ms = excluded.not_after_ms");
  up.Text(1, cert.resource).Text(2, cert.chain_pem).Text(3, cert.key_pem).Text(4, cert.serial);
  up.Int(5, ToMs(cert.not_after));
  P2P_RETURN_IF_ERROR(up.Run());
  P2P_RETURN_IF_ERROR(txn.Bump());
  return txn.Commit();
}

CertificateRecord SqliteStore::CertFromRow(const Stmt& s) {
  return CertificateRecord{s.ColText(0), s.ColText(1), s.ColText(2), s.ColText(3),
                           FromMs(s.ColInt(4))};
}

absl::StatusOr<CertificateRecord> SqliteStore::GetCertificate(absl::string_view resource) {
  P2P_RETURN_IF_ERROR(ValidateName("certificate: resource", resource));
  Stmt s(*this, "SELECT resource, chain_pem, key_pem, serial, not_after_ms FROM certificates "
                "WHERE resource = ?1");
  s.Text(1, resource);
  P2P_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound(StrCat("resource ", Q(resource), " has no certificate"));
  return CertFromRow(s);
}

absl::StatusOr<std::vector<CertificateRecord>> SqliteStore::ListCertificatesExpiringBefore(
    absl::Time t) {
  std::vector<CertificateRecord> out;
  Stmt s(*this, "SELECT resource, chain_pem, key_pem, serial, not_after_ms FROM certificates "
                "WHERE not_after_ms < ?1 ORDER BY not_after_ms, resource");
  s.Int(1, ToMs(t));
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(CertFromRow(s));
  }
  return out;
}

// ---- Audit -----------------------------------------------------------------------------------

absl::StatusOr<bool> SqliteStore::AppendAuditBatch(absl::string_view site_id,
                                                   const wire::AuditBatch& batch, absl::Time now) {
  P2P_RETURN_IF_ERROR(CheckId("audit batch: site id", site_id));
  {
    wire::Frame frame;
    *frame.mutable_audit_batch() = batch;
    const absl::Status s = control::ValidateFrame(frame);
    if (!s.ok()) return Invalid(StrCat("audit batch from ", site_id, ": ", s.message()));
  }
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt s(*this, "INSERT OR IGNORE INTO audit_batches (site_id, sequence, stored_ms) "
                  "VALUES (?1, ?2, ?3)");
    s.Text(1, site_id).Int(2, static_cast<int64_t>(batch.sequence())).Int(3, ToMs(now));
    P2P_RETURN_IF_ERROR(s.Run());
    if (sqlite3_changes(db_) == 0) return false;  // stored before; the Txn rolls back
  }
  for (const wire::AuditEvent& e : batch.events()) {
    Stmt s(*this,
           "INSERT INTO audit_events (site_id, sequence, stored_ms, time_ms, kind, resource, "
           "peer_key, peer, user, roles, method, host, path, status, bytes_in, bytes_out, "
           "duration_ms, allowed, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
           "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)");
    s.Text(1, site_id).Int(2, static_cast<int64_t>(batch.sequence())).Int(3, ToMs(now));
    s.Int(4, e.time_unix_ms()).Int(5, e.kind()).Text(6, e.resource()).Blob(7, e.peer_key());
    s.Text(8, e.peer()).Text(9, e.user()).Text(10, absl::StrJoin(e.roles(), ","));
    s.Text(11, e.method()).Text(12, e.host()).Text(13, e.path()).Int(14, e.status());
    s.Int(15, static_cast<int64_t>(e.bytes_in())).Int(16, static_cast<int64_t>(e.bytes_out()));
    s.Int(17, static_cast<int64_t>(e.duration_ms())).Int(18, e.allowed() ? 1 : 0);
    s.Text(19, e.reason());
    P2P_RETURN_IF_ERROR(s.Run());
  }
  P2P_RETURN_IF_ERROR(txn.Commit());
  return true;
}

absl::StatusOr<std::vector<StoredAuditEvent>> SqliteStore::QueryAudit(const AuditQuery& query) {
#define P2P_AUDIT_SELECT                                                                      \
  "SELECT id, site_id, sequence, stored_ms, time_ms, kind, resource, peer_key, peer, user, "  \
  "roles, method, host, path, status, bytes_in, bytes_out, duration_ms, allowed, reason "     \
  "FROM audit_events WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR resource = ?2) AND "  \
  "(?3 IS NULL OR site_id = ?3) AND time_ms >= ?4 AND time_ms < ?5 "
  Stmt s(*this, query.newest_first
                    ? P2P_AUDIT_SELECT "ORDER BY time_ms DESC, id DESC LIMIT ?6"
                    : P2P_AUDIT_SELECT "ORDER BY time_ms ASC, id ASC LIMIT ?6");
#undef P2P_AUDIT_SELECT
  s.OptText(1, query.user).OptText(2, query.resource).OptText(3, query.site_id);
  s.Int(4, ToMs(query.since)).Int(5, ToMs(query.until));
  const int64_t limit =
      query.limit == 0 ? -1 : static_cast<int64_t>(std::min<size_t>(query.limit, INT64_MAX));
  s.Int(6, limit);
  std::vector<StoredAuditEvent> out;
  for (;;) {
    P2P_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    StoredAuditEvent st;
    st.id = s.ColInt(0);
    st.site_id = s.ColText(1);
    st.sequence = static_cast<uint64_t>(s.ColInt(2));
    st.stored = FromMs(s.ColInt(3));
    wire::AuditEvent& e = st.event;
    e.set_time_unix_ms(s.ColInt(4));
    e.set_kind(static_cast<wire::AuditKind>(s.ColInt(5)));
    e.set_resource(s.ColText(6));
    e.set_peer_key(s.ColText(7));
    e.set_peer(s.ColText(8));
    e.set_user(s.ColText(9));
    const std::string roles = s.ColText(10);
    if (!roles.empty()) {
      for (absl::string_view role : absl::StrSplit(roles, ',')) e.add_roles(std::string(role));
    }
    e.set_method(s.ColText(11));
    e.set_host(s.ColText(12));
    e.set_path(s.ColText(13));
    e.set_status(static_cast<uint32_t>(s.ColInt(14)));
    e.set_bytes_in(static_cast<uint64_t>(s.ColInt(15)));
    e.set_bytes_out(static_cast<uint64_t>(s.ColInt(16)));
    e.set_duration_ms(static_cast<uint64_t>(s.ColInt(17)));
    e.set_allowed(s.ColInt(18) != 0);
    e.set_reason(s.ColText(19));
    out.push_back(std::move(st));
  }
  return out;
}

absl::StatusOr<int64_t> SqliteStore::PruneAudit(absl::Time older_than) {
  Txn txn(*this);
  P2P_RETURN_IF_ERROR(txn.Begin());
  int64_t deleted = 0;
  {
    Stmt s(*this, "DELETE FROM audit_events WHERE time_ms < ?1");
    s.Int(1, ToMs(older_than));
    P2P_RETURN_IF_ERROR(s.Run());
    deleted = sqlite3_changes(db_);
  }
  Stmt s(*this, "DELETE FROM audit_batches WHERE stored_ms < ?1");
  s.Int(1, ToMs(older_than));
  P2P_RETURN_IF_ERROR(s.Run());
  P2P_RETURN_IF_ERROR(txn.Commit());
  return deleted;
}

}  // namespace p2proxy::server
