// audit.cc: AuditEvent rendering and AuditLog.
#include "http/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_text.h"
#include "base/log.h"

namespace p2proxy::http {
namespace {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void Field(std::string* out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  out->append(",\"").append(key).append("\":");
  AppendJsonString(out, value);
}

}  // namespace

std::string AuditEventJson(const AuditEvent& e) {
  std::string out;
  out.reserve(256 + e.path.size());
  out.append("{\"time\":");
  AppendJsonString(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.time, absl::UTCTimeZone()));
  Field(&out, "kind", e.kind);
  Field(&out, "resource", e.resource);
  Field(&out, "peer_key", e.peer_key);
  Field(&out, "peer", e.peer);
  Field(&out, "user", e.user);
  Field(&out, "roles", e.roles);
  Field(&out, "method", e.method);
  Field(&out, "host", e.host);
  Field(&out, "path", e.path);
  if (e.status != 0) absl::StrAppend(&out, ",\"status\":", e.status);
  absl::StrAppend(&out, ",\"bytes_in\":", e.bytes_in, ",\"bytes_out\":", e.bytes_out,
                  ",\"duration_ms\":", e.duration_ms, ",\"decision\":\"", e.allowed ? "allow" : "deny", "\"");
  Field(&out, "reason", e.reason);
  out.push_back('}');
  return out;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(net::Loop& loop, const std::string& path) {
  if (path == "-") return std::unique_ptr<AuditLog>(new AuditLog(loop, STDOUT_FILENO, false));
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("audit: open ", path, ": ", base::ErrnoText(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(loop, fd, true));
}

AuditLog::~AuditLog() {
  *alive_ = false;
  Flush();
  if (owned_) ::close(fd_);
}

void AuditLog::Write(const AuditEvent& event) {
  pending_.append(AuditEventJson(event));
  pending_.push_back('\n');
  ++written_;
  if (flush_posted_) return;
  flush_posted_ = true;
  std::weak_ptr<bool> alive = alive_;
  loop_.Post([this, alive] {
    if (alive.expired()) return;
    flush_posted_ = false;
    Flush();
  });
}

void AuditLog::Flush() {
  size_t off = 0;
  while (off < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + off, pending_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ++write_errors_;
      P2P_LOG(kWarn, "audit.write_failed").Kv("error", base::ErrnoText(errno)).Kv("dropped_bytes", pending_.size() - off);
      break;
    }
    off += static_cast<size_t>(n);
  }
  pending_.clear();
}

}  // namespace p2proxy::http
