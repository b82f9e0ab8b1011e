// os_hook.cc: the DNS OS hook: resolv.conf rewritten in place with a crash-safe backup, or
// systemd-resolved per-link DNS through resolvectl.
#include "dns/os_hook.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errno_text.h"
#include "base/log.h"
#include "base/status_macros.h"

extern char** environ;

namespace p2proxy::dns {
namespace {

constexpr absl::string_view kBackupName = "dns-resolv.conf.backup";
constexpr absl::string_view kLockName = "dns-hook.lock";
constexpr absl::string_view kBackupMagic = "p2proxy-dns-backup 1";
// resolv.conf and its backup are small; anything bigger is not what we think it is.
constexpr size_t kMaxFileLen = 1 << 20;
constexpr size_t kMaxStderrLen = 4096;
constexpr absl::string_view kRootHint = "run as root or pass --dns-hook=none";

// One installed hook per process: a second would back up the first one's resolv.conf.
std::atomic<bool> g_slot_taken{false};

// FileError turns a failed file operation into "dns hook: <op> <path>: <errno text>; <hint>".
absl::Status FileError(int err, absl::string_view op, absl::string_view path) {
  std::string msg = absl::StrCat("dns hook: ", op, " ", path, ": ", base::ErrnoText(err));
  switch (err) {
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(msg, "; ", kRootHint));
    case EROFS:
      return absl::FailedPreconditionError(absl::StrCat(
          msg, "; the file system is read-only: pass --dns-hook=resolved or --dns-hook=none"));
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(absl::StrCat(msg, "; free some space and retry"));
    case ENOENT:
      return absl::NotFoundError(msg);
    default:
      return absl::InternalError(msg);
  }
}

class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string DirName(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  return absl::StrCat(absl::StripSuffix(dir, "/"), "/", name);
}

// ReadFile returns the bytes of |path|, or nullopt if it does not exist.
absl::StatusOr<std::optional<std::string>> ReadFile(const std::string& path) {
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return FileError(errno, "read", path);
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileLen) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dns hook: ", path, " is larger than 1 MiB, which no resolv.conf or backup is; "
          "inspect it by hand"));
    }
  }
  return std::optional<std::string>(std::move(out));
}

absl::Status WriteAll(int fd, absl::string_view data, absl::string_view path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// FsyncDir makes a rename, create or unlink in |dir| durable. Best effort: some file systems
// refuse fsync on a directory, and the data itself was already synced.
void FsyncDir(const std::string& dir) {
  ScopedFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) fsync(fd.get());
}

// WriteInPlace replaces the contents of |path| without replacing the file (its inode, owner,
// mode and any bind mount stay): O_TRUNC + write + fsync. With |create| the file must not
// exist yet and is created with |mode|.
absl::Status WriteInPlace(const std::string& path, absl::string_view data, bool create,
                          mode_t mode) {
  int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY | (create ? O_CREAT | O_EXCL : O_TRUNC);
  ScopedFd fd(open(path.c_str(), flags, mode));
  if (fd.get() < 0) return FileError(errno, "write", path);
  if (create && fchmod(fd.get(), mode) != 0) return FileError(errno, "chmod", path);
  P2P_RETURN_IF_ERROR(WriteAll(fd.get(), data, path));
  if (fsync(fd.get()) != 0) return FileError(errno, "fsync", path);
  if (close(fd.Release()) != 0) return FileError(errno, "close", path);
  if (create) FsyncDir(DirName(path));
  return absl::OkStatus();
}

absl::Status RemoveFile(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return FileError(errno, "remove", path);
  FsyncDir(DirName(path));
  return absl::OkStatus();
}

// EnsureStateDir creates |dir| with mode 0700 (missing parents 0755) if it does not exist.
absl::Status EnsureStateDir(const std::string& dir) {
  std::filesystem::path p(dir);
  std::filesystem::path prefix;
  std::vector<std::filesystem::path> parts(p.begin(), p.end());
  for (size_t i = 0; i < parts.size(); ++i) {
    prefix /= parts[i];
    if (parts[i].empty() || prefix == "/") continue;  // "a/" ends in an empty part
    bool leaf = i + 1 == parts.size() || (i + 2 == parts.size() && parts[i + 1].empty());
    std::string s = prefix.string();
    if (mkdir(s.c_str(), leaf ? 0700 : 0755) == 0) {
      if (leaf && chmod(s.c_str(), 0700) != 0) return FileError(errno, "chmod", s);
      continue;
    }
    if (errno != EEXIST) return FileError(errno, "create state dir", s);
    struct stat st;
    if (stat(s.c_str(), &st) != 0) return FileError(errno, "stat", s);
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dns hook: state dir ", dir, ": ", s, " is not a directory; remove it or pass another "
          "state dir"));
    }
  }
  return absl::OkStatus();
}

// LockStateDir takes the flock that says a hook owns this state dir, and writes our pid into
// the lock file for the error another process will print.
absl::StatusOr<int> LockStateDir(const std::string& dir) {
  std::string path = JoinPath(dir, kLockName);
  ScopedFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
  if (fd.get() < 0) return FileError(errno, "open lock", path);
  while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      char buf[32] = {0};
      ssize_t n = pread(fd.get(), buf, sizeof(buf) - 1, 0);
      std::string pid(absl::StripAsciiWhitespace(n > 0 ? absl::string_view(buf, n) : ""));
      return absl::FailedPreconditionError(absl::StrCat(
          "dns hook: ", path, " is locked by another process",
          pid.empty() ? "" : absl::StrCat(" (pid ", pid, ")"),
          ": another p2proxy-client uses the state dir ", dir,
          " and has the DNS hook installed; stop it first"));
    }
    return FileError(errno, "lock", path);
  }
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd.get(), 0) == 0) (void)pwrite(fd.get(), pid.data(), pid.size(), 0);
  return fd.Release();
}

// Backup is what the backup file records: where the original lives, whether it existed, its
// mode (to recreate it if someone deleted it meanwhile), its bytes, and the bytes we wrote
// (to tell our file, or a cut-short write of it, from one another program put there since).
struct Backup {
  std::string path;
  bool existed = false;
  uint32_t mode = 0644;
  std::string original;
  std::string ours;
};

std::string EncodeBackup(const Backup& b) {
  return absl::StrCat(kBackupMagic, "\n", "path ", b.path, "\n", "existed ",
                      b.existed ? "1" : "0", "\n", absl::StrFormat("mode %04o\n", b.mode),
                      "original_len ", b.original.size(), "\n", "ours_len ", b.ours.size(),
                      "\n\n", b.original, b.ours);
}

// DecodeBackup is strict: the magic line, each key exactly once, nothing unknown, and exactly
// original_len + ours_len bytes after the blank line.
absl::StatusOr<Backup> DecodeBackup(absl::string_view text, absl::string_view file) {
  auto corrupt = [file](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(
        "dns hook: backup ", file, " is corrupt (", why, "); restore resolv.conf by hand from "
        "it if it still holds the original, then delete it"));
  };
  size_t end = text.find("\n\n");
  if (end == absl::string_view::npos) return corrupt("no end of header");
  absl::string_view header = text.substr(0, end);
  absl::string_view body = text.substr(end + 2);
  std::vector<absl::string_view> lines = absl::StrSplit(header, '\n');
  if (lines.empty() || lines[0] != kBackupMagic) return corrupt("not a p2proxy DNS backup");
  Backup b;
  bool have_path = false, have_existed = false, have_mode = false;
  std::optional<size_t> original_len, ours_len;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(lines[i], absl::MaxSplits(' ', 1));
    absl::string_view key = kv.first, value = kv.second;
    if (key == "path" && !have_path) {
      if (value.empty() || value[0] != '/') return corrupt("path is not absolute");
      b.path = std::string(value);
      have_path = true;
    } else if (key == "existed" && !have_existed) {
      if (value != "0" && value != "1") return corrupt("existed is not 0 or 1");
      b.existed = value == "1";
      have_existed = true;
    } else if (key == "mode" && !have_mode) {
      uint32_t mode = 0;
      if (value.empty() || value.size() > 4) return corrupt("bad mode");
      for (char c : value) {
        if (c < '0' || c > '7') return corrupt("bad mode");
        mode = mode * 8 + static_cast<uint32_t>(c - '0');
      }
      b.mode = mode;
      have_mode = true;
    } else if ((key == "original_len" && !original_len) || (key == "ours_len" && !ours_len)) {
      size_t n = 0;
      if (value.empty() || !absl::ascii_isdigit(value[0]) || !absl::SimpleAtoi(value, &n)) {
        return corrupt(absl::StrCat("bad ", key));
      }
      (key == "original_len" ? original_len : ours_len) = n;
    } else {
      return corrupt(absl::StrCat("unexpected or repeated line '", lines[i], "'"));
    }
  }
  if (!have_path || !have_existed || !have_mode || !original_len || !ours_len) {
    return corrupt("a header line is missing");
  }
  if (*original_len > body.size() || body.size() - *original_len != *ours_len) {
    return corrupt("length does not match");
  }
  if (!b.existed && *original_len != 0) return corrupt("content for a file that did not exist");
  b.original = std::string(body.substr(0, *original_len));
  b.ours = std::string(body.substr(*original_len));
  return b;
}

// WriteBackup writes the backup atomically: a 0600 temp file in the state dir, fsync'd, then
// renamed over the backup path, then the directory fsync'd.
absl::Status WriteBackup(const std::string& backup_path, const Backup& b) {
  std::string tmp = absl::StrCat(backup_path, ".tmp");
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) return FileError(errno, "remove", tmp);
  ScopedFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600));
  if (fd.get() < 0) return FileError(errno, "write backup", tmp);
  absl::Status status = [&]() -> absl::Status {
    if (fchmod(fd.get(), 0600) != 0) return FileError(errno, "chmod", tmp);
    P2P_RETURN_IF_ERROR(WriteAll(fd.get(), EncodeBackup(b), tmp));
    if (fsync(fd.get()) != 0) return FileError(errno, "fsync", tmp);
    if (close(fd.Release()) != 0) return FileError(errno, "close", tmp);
    if (rename(tmp.c_str(), backup_path.c_str()) != 0) {
      return FileError(errno, absl::StrCat("rename ", tmp, " to"), backup_path);
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    unlink(tmp.c_str());
    return status;
  }
  FsyncDir(DirName(backup_path));
  return absl::OkStatus();
}

// Outcome of putting a backup back.
enum class Outcome { kRestored, kRemovedCreated, kUnchanged, kKeptForeign };

absl::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kRestored: return "restored";
    case Outcome::kRemovedCreated: return "removed_created";
    case Outcome::kUnchanged: return "already_original";
    case Outcome::kKeptForeign: return "kept_newer_file";
  }
  return "?";
}

// ApplyBackup puts the original back if the file still holds our bytes (or a cut-short write
// of them), leaves it if it already holds the original, and keeps a file another program
// wrote since.
absl::StatusOr<Outcome> ApplyBackup(const Backup& b) {
  P2P_ASSIGN_OR_RETURN(std::optional<std::string> current, ReadFile(b.path));
  if (!current) {
    // Someone deleted it while we were installed: put the original back, if there was one.
    if (!b.existed) return Outcome::kUnchanged;
    P2P_RETURN_IF_ERROR(WriteInPlace(b.path, b.original, /*create=*/true, b.mode));
    return Outcome::kRestored;
  }
  if (b.existed && *current == b.original) return Outcome::kUnchanged;
  if (!absl::StartsWith(b.ours, *current)) return Outcome::kKeptForeign;
  if (!b.existed) {
    P2P_RETURN_IF_ERROR(RemoveFile(b.path));
    return Outcome::kRemovedCreated;
  }
  P2P_RETURN_IF_ERROR(WriteInPlace(b.path, b.original, /*create=*/false, 0));
  return Outcome::kRestored;
}

// FinishBackup applies |b|, removes the backup file and logs |event|. The backup stays if the
// original could not be put back, so the next run can retry.
absl::StatusOr<Outcome> FinishBackup(const Backup& b, const std::string& backup_path,
                                     absl::string_view event) {
  P2P_ASSIGN_OR_RETURN(Outcome outcome, ApplyBackup(b));
  if (outcome == Outcome::kKeptForeign) {
    P2P_LOG(kWarn, "dns.hook_restore_skipped")
        .Kv("path", b.path)
        .Kv("reason", "another program rewrote the file; keeping its version")
        .Kv("backup", backup_path);
  }
  P2P_RETURN_IF_ERROR(RemoveFile(backup_path));
  P2P_LOG(kInfo, event)
      .Kv("mode", "resolv.conf")
      .Kv("path", b.path)
      .Kv("action", OutcomeName(outcome))
      .Kv("existed", b.existed);
  return outcome;
}

// RecoverLocked puts back a backup a killed run left; the caller holds the state dir lock.
absl::StatusOr<bool> RecoverLocked(const std::string& backup_path) {
  P2P_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFile(backup_path));
  if (!text) return false;
  P2P_ASSIGN_OR_RETURN(Backup b, DecodeBackup(*text, backup_path));
  P2P_ASSIGN_OR_RETURN(Outcome outcome, FinishBackup(b, backup_path, "dns.hook_recovered"));
  return outcome == Outcome::kRestored || outcome == Outcome::kRemovedCreated;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// IsResolvedStub says whether |resolv_conf| is a symlink into |resolve_dir| (stub-resolv.conf
// or resolv.conf there), as systemd-resolved sets it up.
bool IsResolvedStub(const std::string& resolv_conf, const std::string& resolve_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = fs::read_symlink(resolv_conf, ec);
  if (ec) return false;
  if (target.is_relative()) target = fs::path(resolv_conf).parent_path() / target;
  std::string t = target.lexically_normal().string();
  std::string dir = fs::path(resolve_dir).lexically_normal().string();
  if (!absl::EndsWith(dir, "/")) dir += "/";
  return absl::StartsWith(t, dir);
}

// RoutingDomain turns "example.internal", "Example.Internal." or "~example.internal" into
// "~example.internal"; "." into "~.".
absl::StatusOr<std::string> RoutingDomain(absl::string_view name, size_t index) {
  absl::string_view d = absl::StripPrefix(name, "~");
  if (d != ".") d = absl::StripSuffix(d, ".");
  bool ok = !d.empty() && d.size() <= 253 && d.front() != '.' && d.find("..") == d.npos;
  for (char c : d) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') ok = false;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns hook: options.routing_domains[", index, "]: '", name,
        "' is not a domain name (letters, digits, '-', '_', dots between labels)"));
  }
  return absl::StrCat("~", absl::AsciiStrToLower(d));
}

// BuildResolvConf is what resolv.conf mode writes: who wrote it and where the original is,
// our resolver, and the original's search/domain/options lines in their order (glibc lets the
// last search/domain line win, so order matters).
std::string BuildResolvConf(const std::optional<std::string>& original,
                            const base::IpAddress& resolver, const std::string& backup_path) {
  std::string out = absl::StrCat(
      "# Written by p2proxy-client's DNS hook: queries go to its resolver.\n"
      "# The original is saved in ", backup_path, "\n"
      "# and is put back when p2proxy-client stops (or starts again, if it was killed).\n"
      "nameserver ", resolver.ToString(), "\n");
  if (!original) return out;
  for (absl::string_view line : absl::StrSplit(*original, '\n')) {
    line = absl::StripSuffix(line, "\r");
    absl::string_view word = line.substr(0, line.find_first_of(" \t"));
    if (word == "search" || word == "domain" || word == "options") {
      absl::StrAppend(&out, line, "\n");
    }
  }
  return out;
}

std::string UpstreamList(const std::vector<base::SocketAddress>& upstreams) {
  return absl::StrJoin(upstreams, ",", [](std::string* out, const base::SocketAddress& a) {
    absl::StrAppend(out, a.ToString());
  });
}

}  // namespace

absl::string_view OsHook::ModeName(Mode mode) {
  switch (mode) {
    case Mode::kAuto: return "auto";
    case Mode::kResolved: return "resolved";
    case Mode::kResolvConf: return "resolv.conf";
    case Mode::kNone: return "none";
  }
  return "?";
}

absl::StatusOr<OsHook::Mode> OsHook::ParseMode(absl::string_view name) {
  for (Mode m : {Mode::kAuto, Mode::kResolved, Mode::kResolvConf, Mode::kNone}) {
    if (name == ModeName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "dns hook: '", name, "' is not a mode: expected auto, resolved, resolv.conf or none"));
}

std::vector<base::SocketAddress> OsHook::ParseResolvConf(
    absl::string_view text, const std::optional<base::IpAddress>& exclude) {
  std::vector<base::SocketAddress> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripSuffix(line, "\r");
    // glibc: the keyword starts the line and a space or tab follows it.
    if (!absl::ConsumePrefix(&line, "nameserver")) continue;
    if (line.empty() || (line[0] != ' ' && line[0] != '\t')) continue;
    line = absl::StripLeadingAsciiWhitespace(line);
    absl::string_view word = line.substr(0, line.find_first_of(" \t"));
    absl::StatusOr<base::IpAddress> ip = base::IpAddress::Parse(word);
    if (!ip.ok()) continue;
    if (exclude && *ip == *exclude) continue;
    absl::StatusOr<base::SocketAddress> addr = base::SocketAddress::FromIp(ip->ToString(), 53);
    if (!addr.ok()) continue;
    bool seen = false;
    for (const base::SocketAddress& a : out) seen = seen || a == *addr;
    if (!seen) out.push_back(*addr);
  }
  return out;
}

std::string OsHook::BackupPath(const Options& options) {
  return JoinPath(options.state_dir, kBackupName);
}

absl::StatusOr<bool> OsHook::Recover(const Options& options) {
  if (g_slot_taken.load()) {
    return absl::FailedPreconditionError(
        "dns hook: a hook is installed in this process; Restore() it instead of Recover()");
  }
  std::string backup_path = BackupPath(options);
  if (!FileExists(backup_path)) return false;
  P2P_ASSIGN_OR_RETURN(int lock, LockStateDir(options.state_dir));
  ScopedFd lock_fd(lock);
  return RecoverLocked(backup_path);
}

absl::StatusOr<std::unique_ptr<OsHook>> OsHook::Install(const Options& options) {
  // Checks that need no side effects come first, so a bad option changes nothing.
  auto bad = [](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("dns hook: options.", field, ": ", why));
  };
  using Field = std::pair<absl::string_view, const std::string*>;
  for (const auto& [field, value] : {Field{"resolv_conf_path", &options.resolv_conf_path},
                                     Field{"state_dir", &options.state_dir}}) {
    if (value->empty() || (*value)[0] != '/') {
      return bad(field, absl::StrCat("'", *value, "' is not an absolute path"));
    }
    if (value->find('\n') != std::string::npos || value->find('\0') != std::string::npos) {
      return bad(field, "a newline or NUL in a path is not supported");
    }
  }
  Mode mode = options.mode;
  if (mode == Mode::kAuto) {
    auto has_program = options.has_program ? options.has_program : ProgramInPath;
    bool resolved = IsResolvedStub(options.resolv_conf_path, options.systemd_resolve_dir) &&
                    has_program("resolvectl") &&
                    FileExists(JoinPath(options.systemd_resolve_dir, "io.systemd.Resolve"));
    mode = resolved ? Mode::kResolved : Mode::kResolvConf;
  }
  if (mode != Mode::kNone && options.resolver.family == base::IpAddress::kNone) {
    return bad("resolver", "no address: set where the resolver listens");
  }
  if (mode == Mode::kResolvConf && options.resolver_port != 53) {
    return bad("resolver_port",
               absl::StrCat(options.resolver_port,
                            " cannot be used in resolv.conf mode, which can only name port 53; "
                            "listen on port 53 or use --dns-hook=resolved"));
  }
  std::vector<std::string> domains;
  if (mode == Mode::kResolved) {
    if (options.interface_name.empty()) {
      return bad("interface_name", "empty, but resolved mode sets DNS on the TUN interface");
    }
    for (size_t i = 0; i < options.routing_domains.size(); ++i) {
      P2P_ASSIGN_OR_RETURN(std::string d, RoutingDomain(options.routing_domains[i], i));
      domains.push_back(std::move(d));
    }
  }

  bool expected = false;
  if (!g_slot_taken.compare_exchange_strong(expected, true)) {
    return absl::FailedPreconditionError(
        "dns hook: a hook is already installed in this process; Restore() it first");
  }
  // From here on every failure gives the slot (and the lock) back.
  int lock = -1;
  auto fail = [&lock](absl::Status status) {
    if (lock >= 0) close(lock);
    g_slot_taken.store(false);
    return status;
  };

  std::string backup_path = BackupPath(options);
  if (mode == Mode::kResolvConf) {
    if (absl::Status s = EnsureStateDir(options.state_dir); !s.ok()) return fail(s);
  }
  if (mode == Mode::kResolvConf || FileExists(backup_path)) {
    absl::StatusOr<int> l = LockStateDir(options.state_dir);
    if (!l.ok()) return fail(l.status());
    lock = *l;
    if (absl::StatusOr<bool> r = RecoverLocked(backup_path); !r.ok()) return fail(r.status());
    if (mode != Mode::kResolvConf) {
      close(lock);
      lock = -1;
    }
  }

  absl::StatusOr<std::unique_ptr<OsHook>> hook;
  switch (mode) {
    case Mode::kResolved:
      hook = InstallResolved(options, std::move(domains));
      break;
    case Mode::kResolvConf:
      hook = InstallResolvConf(options, lock);
      break;
    case Mode::kAuto:  // resolved above
    case Mode::kNone:
      hook = InstallNone(options);
      break;
  }
  if (!hook.ok()) return fail(hook.status());
  // The hook owns the lock now.
  if ((*hook)->mode_ == Mode::kNone) {
    g_slot_taken.store(false);  // a hook that changed nothing holds nothing
  } else {
    (*hook)->holds_slot_ = true;
  }
  return hook;
}

absl::StatusOr<std::unique_ptr<OsHook>> OsHook::InstallNone(const Options& options) {
  std::vector<base::SocketAddress> upstreams;
  absl::StatusOr<std::optional<std::string>> text = ReadFile(options.resolv_conf_path);
  if (text.ok() && *text) {
    std::optional<base::IpAddress> exclude;
    if (options.resolver.family != base::IpAddress::kNone) exclude = options.resolver;
    upstreams = ParseResolvConf(**text, exclude);
  }
  P2P_LOG(kInfo, "dns.hook_installed")
      .Kv("mode", "none")
      .Kv("upstreams", UpstreamList(upstreams));
  auto hook = std::unique_ptr<OsHook>(new OsHook(options, Mode::kNone, upstreams, -1));
  hook->done_ = true;
  return hook;
}

absl::StatusOr<std::unique_ptr<OsHook>> OsHook::InstallResolved(const Options& options,
                                                                std::vector<std::string> domains) {
  std::vector<base::SocketAddress> upstreams;
  std::string stub = JoinPath(options.systemd_resolve_dir, "resolv.conf");
  absl::StatusOr<std::optional<std::string>> text = ReadFile(stub);
  if (text.ok() && *text) {
    upstreams = ParseResolvConf(**text, options.resolver);
  } else {
    P2P_LOG(kWarn, "dns.hook_no_upstreams")
        .Kv("path", stub)
        .Kv("error", text.ok() ? "missing" : text.status().message());
  }
  std::string server = options.resolver.ToString();
  if (options.resolver_port != 53) {
    absl::StatusOr<base::SocketAddress> a =
        base::SocketAddress::FromIp(server, options.resolver_port);
    if (!a.ok()) return a.status();
    server = a->ToString();
  }
  const std::string& iface = options.interface_name;
  std::vector<std::string> domain_cmd = {"resolvectl", "domain", iface};
  if (domains.empty()) domains.push_back("~.");
  domain_cmd.insert(domain_cmd.end(), domains.begin(), domains.end());
  bool default_route = options.routing_domains.empty();
  std::vector<std::vector<std::string>> commands = {
      {"resolvectl", "dns", iface, server},
      domain_cmd,
      {"resolvectl", "default-route", iface, default_route ? "true" : "false"},
  };
  auto run = Runner(options);
  for (const std::vector<std::string>& argv : commands) {
    absl::Status s = run(argv);
    if (s.ok()) continue;
    absl::Status revert = run({"resolvectl", "revert", iface});
    return absl::Status(
        s.code(),
        absl::StrCat("dns hook: `", absl::StrJoin(argv, " "), "`: ", s.message(),
                     revert.ok() ? "" : "; `resolvectl revert` failed too",
                     "; check that systemd-resolved runs and ", iface,
                     " exists, or pass --dns-hook=resolv.conf"));
  }
  P2P_LOG(kInfo, "dns.hook_installed")
      .Kv("mode", "resolved")
      .Kv("interface", iface)
      .Kv("dns", server)
      .Kv("domains", absl::StrJoin(domains, ","))
      .Kv("default_route", default_route)
      .Kv("upstreams", UpstreamList(upstreams));
  return std::unique_ptr<OsHook>(new OsHook(options, Mode::kResolved, upstreams, -1));
}

absl::StatusOr<std::unique_ptr<OsHook>> OsHook::InstallResolvConf(const Options& options,
                                                                  int lock) {
  std::string backup_path = BackupPath(options);
  std::vector<base::SocketAddress> upstreams;
  const std::string& path = options.resolv_conf_path;
  absl::StatusOr<std::optional<std::string>> original = ReadFile(path);
  if (!original.ok()) return original.status();
  Backup b;
  b.path = path;
  b.existed = original->has_value();
  if (b.existed) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return FileError(errno, "stat", path);
    b.mode = st.st_mode & 07777;
    b.original = **original;
    upstreams = ParseResolvConf(b.original, options.resolver);
    if (absl::StrContains(b.original, "p2proxy-client's DNS hook")) {
      P2P_LOG(kWarn, "dns.hook_stale_file")
          .Kv("path", path)
          .Kv("reason", "it holds our content but there is no backup; its original is lost");
    }
  } else if (FileExists(path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dns hook: ", path, " is a dangling symlink; fix it, or pass --dns-hook=resolved "
        "or --dns-hook=none"));
  }
  b.ours = BuildResolvConf(*original, options.resolver, backup_path);
  if (absl::Status s = WriteBackup(backup_path, b); !s.ok()) return s;
  absl::Status s = WriteInPlace(path, b.ours, /*create=*/!b.existed, 0644);
  if (!s.ok()) {
    // Undo a cut-short write; if even that fails, the backup stays for the next run.
    absl::StatusOr<Outcome> undo = FinishBackup(b, backup_path, "dns.hook_restored");
    if (!undo.ok()) {
      s = absl::Status(s.code(), absl::StrCat(s.message(), "; putting the original back failed "
                                              "too: ", undo.status().message()));
    }
    return s;
  }
  P2P_LOG(kInfo, "dns.hook_installed")
      .Kv("mode", "resolv.conf")
      .Kv("path", path)
      .Kv("existed", b.existed)
      .Kv("backup", backup_path)
      .Kv("resolver", options.resolver.ToString())
      .Kv("upstreams", UpstreamList(upstreams));
  auto hook = std::unique_ptr<OsHook>(new OsHook(options, Mode::kResolvConf, upstreams, lock));
  hook->backup_ = std::make_unique<BackupState>(
      BackupState{b.existed, b.mode, std::move(b.original), std::move(b.ours)});
  return hook;
}

OsHook::OsHook(Options options, Mode mode, std::vector<base::SocketAddress> upstreams,
               int lock_fd)
    : options_(std::move(options)), mode_(mode), upstreams_(std::move(upstreams)),
      lock_fd_(lock_fd) {}

OsHook::~OsHook() {
  absl::Status s = Restore();
  if (!s.ok()) {
    P2P_LOG(kError, "dns.hook_restore_failed")
        .Kv("mode", ModeName(mode_))
        .Kv("error", s.message());
  }
  ReleaseSlotAndLock();
}

absl::Status OsHook::Restore() {
  if (done_) return absl::OkStatus();
  if (mode_ == Mode::kResolved) {
    P2P_RETURN_IF_ERROR(RestoreResolved());
  } else if (mode_ == Mode::kResolvConf && backup_) {
    Backup b{options_.resolv_conf_path, backup_->existed, backup_->mode, backup_->original,
             backup_->ours};
    P2P_ASSIGN_OR_RETURN(Outcome outcome,
                         FinishBackup(b, BackupPath(options_), "dns.hook_restored"));
    (void)outcome;
  }
  done_ = true;
  ReleaseSlotAndLock();
  return absl::OkStatus();
}

absl::Status OsHook::RestoreResolved() {
  const std::string& iface = options_.interface_name;
  auto run = Runner(options_);
  absl::Status s = run({"resolvectl", "revert", iface});
  bool gone = !s.ok() && if_nametoindex(iface.c_str()) == 0;
  if (!s.ok() && !gone) {
    return absl::Status(s.code(), absl::StrCat("dns hook: `resolvectl revert ", iface, "`: ",
                                               s.message(),
                                               "; check that systemd-resolved runs"));
  }
  // An interface that is gone took its per-link settings with it.
  P2P_LOG(kInfo, "dns.hook_restored")
      .Kv("mode", "resolved")
      .Kv("interface", iface)
      .Kv("action", gone ? "interface_gone" : "reverted");
  return absl::OkStatus();
}

void OsHook::AbandonForTesting() {
  done_ = true;
  ReleaseSlotAndLock();
}

void OsHook::ReleaseSlotAndLock() {
  if (lock_fd_ >= 0) close(std::exchange(lock_fd_, -1));
  if (holds_slot_) {
    holds_slot_ = false;
    g_slot_taken.store(false);
  }
}

std::function<absl::Status(const std::vector<std::string>&)> OsHook::Runner(const Options& options) {
  if (options.run) return options.run;
  return [timeout = options.command_timeout](const std::vector<std::string>& argv) {
    return RunCommandWithTimeout(argv, timeout);
  };
}

absl::Status OsHook::RunCommand(const std::vector<std::string>& argv) {
  return RunCommandWithTimeout(argv, kDefaultCommandTimeout);
}

absl::Status OsHook::RunCommandWithTimeout(const std::vector<std::string>& argv,
                                           absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("dns hook: empty command");
  // A year stands for "no timeout" (and keeps the deadline from overflowing).
  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(24 * 365)));
  // remaining_ms is what is left of the timeout, rounded up (0: expired).
  auto remaining_ms = [deadline]() -> int {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
  };
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", base::ErrnoText(errno)));
  }
  ScopedFd read_end(pipe_fds[0]);
  ScopedFd write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);  // dup2 clears CLOEXEC
  // A process group of its own (pgid = its pid), so a timeout kills whatever it started too.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(write_end.Release());
  if (rc != 0) {
    if (rc == ENOENT) {
      return absl::NotFoundError(absl::StrCat(argv[0], ": not found in PATH"));
    }
    return absl::InternalError(absl::StrCat("start ", argv[0], ": ", base::ErrnoText(rc)));
  }
  // Read stderr until the command closes it (it exits), or the time is up.
  bool timed_out = false;
  std::string err;
  char buf[1024];
  for (;;) {
    const int wait_ms = remaining_ms();
    if (wait_ms == 0) {
      timed_out = true;
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    const int ready = poll(&p, 1, wait_ms);
    if (ready < 0 && errno != EINTR) break;  // cannot happen with a valid fd; go and reap
    if (ready <= 0) continue;
    ssize_t n = read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // Keep draining past the cap, so the child never blocks on a full pipe.
    if (err.size() < kMaxStderrLen) {
      err.append(buf, std::min(static_cast<size_t>(n), kMaxStderrLen - err.size()));
    }
  }
  // Reap it. Closing stderr almost always means it has exited; one that closed stderr and
  // lives on is looked at every 10 ms until the time is up (a wait with a timeout on a child
  // would need a SIGCHLD handler, which a library must not install).
  int status = 0;
  while (!timed_out) {
    const pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) break;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return absl::InternalError(absl::StrCat("wait for ", argv[0], ": ", base::ErrnoText(errno)));
    }
    const int wait_ms = remaining_ms();
    if (wait_ms == 0) {
      timed_out = true;
      break;
    }
    poll(nullptr, 0, std::min(wait_ms, 10));
  }
  if (timed_out) {
    // The group first, while the unreaped child keeps its pid (the group's id) from reuse.
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);  // in case it could not get its own group
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not finish within ",
                                                    absl::FormatDuration(timeout), "; killed it"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  std::string what = WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                     : WIFSIGNALED(status) ? absl::StrCat("killed by signal ", WTERMSIG(status))
                                           : std::string("failed");
  absl::string_view text = absl::StripAsciiWhitespace(err);
  return absl::FailedPreconditionError(
      text.empty() ? what : absl::StrCat(what, ": ", text));
}

bool OsHook::ProgramInPath(const std::string& name) {
  if (name.empty()) return false;
  auto executable = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return executable(name);
  const char* env = getenv("PATH");
  absl::string_view path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (executable(JoinPath(dir.empty() ? "." : dir, name))) return true;
  }
  return false;
}

}  // namespace p2proxy::dns
