// admin_socket.h: the admin commands over a local unix stream socket: AdminServer on the
// server's net::Loop, RunAdminClient for `p2proxy-server admin ...`.
//
// One request per connection. Each message is a 32-bit big-endian length and then a payload:
//   request:  u8 version (1) | u32 num_args | num_args x (u32 len | bytes)
//   response: u8 version (1) | u8 exit_code | u32 out_len | out | u32 err_len | err
// all integers big-endian, nothing trailing. A request is at most kMaxAdminRequestLen bytes
// of payload and kMaxAdminArgs args; a response at most kMaxAdminResponseLen. Anything else
// (too long, malformed, a second request, silence past the deadline) closes the connection
// with a logged reason.
//
// Who may talk to it: the socket file is 0600 (root only), or 0660 with the group of
// options.group when that group exists; the server also checks every peer with SO_PEERCRED:
// root, the server's own uid, or a member of that group. Others get a refusal answer (exit 1)
// naming what to do.
#ifndef P2PROXY_SERVER_ADMIN_SOCKET_H_
#define P2PROXY_SERVER_ADMIN_SOCKET_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "net/handle.h"
#include "net/loop.h"
#include "server/admin.h"

namespace p2proxy::server {

inline constexpr size_t kMaxAdminRequestLen = 64 * 1024;
inline constexpr size_t kMaxAdminArgs = 256;
inline constexpr size_t kMaxAdminResponseLen = 16 * 1024 * 1024;
inline constexpr uint8_t kAdminProtocolVersion = 1;

// kDefaultAdminSocket is where p2proxy-server listens unless told otherwise.
inline constexpr absl::string_view kDefaultAdminSocket = "/run/p2proxy/admin.sock";

// EncodeAdminRequest / EncodeAdminResponse make a whole message (length prefix included).
std::string EncodeAdminRequest(const std::vector<std::string>& args);
std::string EncodeAdminResponse(const AdminResult& result);
// DecodeAdminRequest / DecodeAdminResponse read one payload (without the length prefix),
// strictly: the version, every length bounds-checked against what remains and the limits
// above, nothing trailing. InvalidArgument naming the rule broken; the input is never echoed.
absl::StatusOr<std::vector<std::string>> DecodeAdminRequest(absl::string_view payload);
absl::StatusOr<AdminResult> DecodeAdminResponse(absl::string_view payload);

struct AdminServerOptions {
  // group: members of this group may use the socket (file mode 0660, that gid) if the group
  // exists; empty or absent: root (and the server's own uid) only, mode 0600.
  std::string group = "p2proxy";
  // deadline: a connection that has not sent its whole request and taken its whole answer by
  // then is closed.
  absl::Duration deadline = absl::Seconds(10);
  // max_connections: connections open at once; more are closed at once (logged).
  size_t max_connections = 16;
};

// AdminServer serves RunAdmin on a unix socket. Each command runs on the loop's thread, to
// completion, when its request is complete (admin commands are short store transactions).
class AdminServer {
 public:
  // Counters, for logs and tests.
  struct Stats {
    uint64_t served = 0;          // requests answered (whatever their exit status)
    uint64_t refused_peers = 0;   // peers refused by SO_PEERCRED
    uint64_t bad_requests = 0;    // closed: too long, malformed, trailing bytes, early EOF
    uint64_t timed_out = 0;       // closed at the deadline
    uint64_t too_many = 0;        // closed: max_connections open already
  };

  // Listen creates the socket at |path| (its directory 0755 if missing). A stale socket file
  // (nothing accepts on it) is replaced; a live one is AlreadyExists (another server runs), and
  // a path that exists and is not a socket is FailedPrecondition (never deleted). |host| must
  // outlive the server. Errors name the path and what to do.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Listen(net::Loop& loop,
                                                             const std::string& path,
                                                             AdminHost& host,
                                                             AdminServerOptions options = {});
  // Closes every connection and removes the socket file.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  const std::string& path() const { return path_; }
  // group_id is the gid allowed in, if the group exists.
  std::optional<gid_t> group_id() const { return gid_; }
  const Stats& stats() const { return stats_; }
  size_t open_connections() const { return conns_.size(); }

 private:
  struct Conn;
  AdminServer(net::Loop& loop, std::string path, AdminHost& host, AdminServerOptions options);
  void OnConnection();
  void OnData(Conn* c, const char* data, size_t len);
  void Answer(Conn* c, const AdminResult& result);
  void Drop(Conn* c, absl::string_view reason);
  void CloseConn(Conn* c);
  // PeerAllowed checks the peer of |fd|; *why gets the refusal.
  bool PeerAllowed(int fd, std::string* why, uid_t* uid_out);

  net::Loop& loop_;
  std::string path_;
  AdminHost& host_;
  AdminServerOptions options_;
  std::optional<gid_t> gid_;
  net::UvHandle<uv_pipe_t> pipe_;
  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t next_conn_id_ = 1;
  Stats stats_;
};

// RunAdminClient sends |args| to the server at |path| and writes its answer to |out| and
// |err|; returns the command's exit status. Blocking. If the server cannot be reached or
// answers badly: a line on |err| ("cannot reach the server at PATH: is p2proxy-server
// running? (...)") and 1; a command too long to send: 2. |timeout| bounds each wait.
int RunAdminClient(const std::string& path, const std::vector<std::string>& args,
                   std::ostream& out, std::ostream& err,
                   absl::Duration timeout = absl::Seconds(60));

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_ADMIN_SOCKET_H_
