// audit.cc: AuditEvent rendering and AuditLog.
#include "http/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_text.h"
#include "base/log.h"

namespace p2proxy::http {
namespace {

// NeedsEscape: '"', '\\', the C0 controls and DEL; everything else (UTF-8 included) is copied.
constexpr bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7f; }

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!NeedsEscape(c)) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(esc, sizeof esc);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void Field(std::string* out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  out->append(",\"").append(key).append("\":");
  AppendJsonString(out, value);
}

// Digits writes |v| as exactly |n| decimal digits at |p|.
void Digits(char* p, int64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// AppendRfc3339Millis appends |t| as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC). Years outside 0..9999
// fall back to absl's formatter. The civil date comes from the day count by the usual
// era-based conversion (proleptic Gregorian calendar, 400-year eras of 146097 days).
void AppendRfc3339Millis(std::string* out, absl::Time t) {
  const int64_t ms = absl::ToUnixMillis(t);
  int64_t days = ms / 86400000, rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                  // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                // March = 0
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) {
    out->append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
    return;
  }
  char b[24] = {0, 0, 0, 0, '-', 0, 0, '-', 0, 0, 'T', 0, 0, ':', 0, 0, ':', 0, 0, '.', 0, 0, 0, 'Z'};
  Digits(b, year, 4);
  Digits(b + 5, month, 2);
  Digits(b + 8, day, 2);
  Digits(b + 11, rem / 3600000, 2);
  Digits(b + 14, rem / 60000 % 60, 2);
  Digits(b + 17, rem / 1000 % 60, 2);
  Digits(b + 20, rem % 1000, 3);
  out->append(b, sizeof b);
}

}  // namespace

void AppendAuditEventJson(const AuditEvent& e, std::string* out) {
  out->append("{\"time\":\"");
  AppendRfc3339Millis(out, e.time);
  out->push_back('"');
  Field(out, "kind", e.kind);
  Field(out, "resource", e.resource);
  Field(out, "peer_key", e.peer_key);
  Field(out, "peer", e.peer);
  Field(out, "user", e.user);
  Field(out, "roles", e.roles);
  Field(out, "method", e.method);
  Field(out, "host", e.host);
  Field(out, "path", e.path);
  if (e.status != 0) absl::StrAppend(out, ",\"status\":", e.status);
  absl::StrAppend(out, ",\"bytes_in\":", e.bytes_in, ",\"bytes_out\":", e.bytes_out,
                  ",\"duration_ms\":", e.duration_ms, ",\"decision\":\"", e.allowed ? "allow" : "deny", "\"");
  Field(out, "reason", e.reason);
  out->push_back('}');
}

std::string AuditEventJson(const AuditEvent& e) {
  std::string out;
  out.reserve(256 + e.path.size());
  AppendAuditEventJson(e, &out);
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
  if (tap_) tap_(event);
  AppendAuditEventJson(event, &pending_);
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
