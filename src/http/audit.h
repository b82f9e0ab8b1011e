// audit.h: audit events (DESIGN.md §7): one per HTTP request, or per TCP connection and UDP
// session, allowed or denied, written as JSON lines. Until the control plane exists they go to a
// local file (or stdout); later the same events are batched to the server.
#ifndef P2PROXY_HTTP_AUDIT_H_
#define P2PROXY_HTTP_AUDIT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/loop.h"

namespace p2proxy::http {

// AuditEvent is one decision and what came of it. Empty strings are left out of the JSON, and
// so are method/host/path/status for connection-level events. The strings are views: what
// they point at must outlive the AuditLog::Write or AuditEventJson call (which copy nothing
// but the rendered line), so an event costs no allocation of its own.
struct AuditEvent {
  absl::Time time;           // when the request or connection started
  std::string_view kind;     // "https", "http", "tcp" or "udp"
  std::string_view resource; // the resource's name
  std::string_view peer_key; // the peer's WireGuard public key (base64)
  std::string_view peer;     // the peer's overlay address and port, "100.96.0.5:41000"
  std::string_view user;     // the user the key maps to; empty if none
  std::string_view roles;    // comma-separated
  std::string_view method;   // HTTP only
  std::string_view host;     // HTTP: Host / :authority; TLS: the SNI
  std::string_view path;     // HTTP only
  int status = 0;            // HTTP status sent; 0 when none (TCP/UDP, or no response)
  uint64_t bytes_in = 0;     // from the peer (HTTP: request body)
  uint64_t bytes_out = 0;    // to the peer (HTTP: response body)
  int64_t duration_ms = 0;
  bool allowed = false;      // the access decision
  std::string_view reason;   // why denied, or what failed
};

// AuditEventJson renders |event| as one line of JSON (no newline): keys in a fixed order, time
// as RFC 3339 UTC with milliseconds, strings escaped per RFC 8259.
std::string AuditEventJson(const AuditEvent& event);
// AppendAuditEventJson appends the same line to |*out|.
void AppendAuditEventJson(const AuditEvent& event, std::string* out);

// AuditLog appends events to a file opened O_APPEND (created 0600) or to stdout. Lines written
// in one loop turn go out in one write(2) at the end of the turn, so a burst of requests costs
// one system call; a line is never split between two writes. Failure to write is logged (rate
// limited) and counted, never fatal to the data path.
class AuditLog {
 public:
  // Open opens |path| for appending, or stdout when |path| is "-". Error: the file cannot be
  // opened (the message names it).
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(net::Loop& loop, const std::string& path);
  ~AuditLog();  // flushes what is buffered

  // Write appends |event| to the log, and hands it to the tap first if there is one.
  void Write(const AuditEvent& event);
  void Flush();
  // SetTap makes every event also go to |tap| (a managed site sends them to the server). The
  // event's views are valid only during the call.
  void SetTap(absl::AnyInvocable<void(const AuditEvent&)> tap) { tap_ = std::move(tap); }
  uint64_t written() const { return written_; }
  uint64_t write_errors() const { return write_errors_; }

 private:
  AuditLog(net::Loop& loop, int fd, bool owned) : loop_(loop), fd_(fd), owned_(owned),
                                                  alive_(std::make_shared<bool>(true)) {}
  net::Loop& loop_;
  int fd_;
  bool owned_;
  std::shared_ptr<bool> alive_;  // lets a posted flush notice the log is gone
  absl::AnyInvocable<void(const AuditEvent&)> tap_;
  std::string pending_;
  bool flush_posted_ = false;
  uint64_t written_ = 0;
  uint64_t write_errors_ = 0;
};

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_AUDIT_H_
