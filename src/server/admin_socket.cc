// admin_socket.cc: AdminServer (a libuv pipe on the server's loop) and RunAdminClient (plain
// blocking sockets).
#include "server/admin_socket.h"

#include <errno.h>
#include <grp.h>
#include <openssl/bytestring.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_text.h"
#include "base/log.h"
#include "net/timer.h"

namespace p2proxy::server {
namespace {

using absl::StrCat;

void PutU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

uint32_t GetU32(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

std::string WithLength(std::string payload) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

CBS ToCbs(absl::string_view s) {
  CBS cbs;
  CBS_init(&cbs, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  return cbs;
}

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(StrCat("admin: ", what));
}

// ReadString reads u32 length + bytes, refusing a length above |max|.
bool ReadString(CBS* cbs, size_t max, std::string* out) {
  uint32_t len = 0;
  CBS bytes;
  if (!CBS_get_u32(cbs, &len) || len > max || !CBS_get_bytes(cbs, &bytes, len)) return false;
  out->assign(reinterpret_cast<const char*>(CBS_data(&bytes)), CBS_len(&bytes));
  return true;
}

// IsLive is true if something accepts connections on |path|.
bool IsLive(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
  const bool live = connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0;
  close(fd);
  return live;
}

std::optional<gid_t> LookUpGroup(const std::string& name) {
  if (name.empty()) return std::nullopt;
  group grp{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r(name.c_str(), &grp, buf.data(), buf.size(), &found) != 0 || !found) {
    return std::nullopt;
  }
  return found->gr_gid;
}

// InGroup: whether user |uid| (primary group |gid|) is a member of |group|.
bool InGroup(uid_t uid, gid_t gid, gid_t group) {
  if (gid == group) return true;
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) return false;
  int num_groups = 64;
  std::vector<gid_t> groups(num_groups);
  if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &num_groups) < 0) {
    groups.resize(num_groups);
    if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &num_groups) < 0) return false;
  }
  groups.resize(num_groups);
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

struct WriteReq {
  uv_write_t req;
  std::string data;
};

}  // namespace

std::string EncodeAdminRequest(const std::vector<std::string>& args) {
  std::string payload(1, static_cast<char>(kAdminProtocolVersion));
  PutU32(&payload, static_cast<uint32_t>(args.size()));
  for (const auto& a : args) {
    PutU32(&payload, static_cast<uint32_t>(a.size()));
    payload += a;
  }
  return WithLength(std::move(payload));
}

std::string EncodeAdminResponse(const AdminResult& result) {
  std::string payload(1, static_cast<char>(kAdminProtocolVersion));
  payload.push_back(static_cast<char>(std::clamp(result.exit_code, 0, 255)));
  PutU32(&payload, static_cast<uint32_t>(result.out.size()));
  payload += result.out;
  PutU32(&payload, static_cast<uint32_t>(result.err.size()));
  payload += result.err;
  return WithLength(std::move(payload));
}

absl::StatusOr<std::vector<std::string>> DecodeAdminRequest(absl::string_view payload) {
  if (payload.size() > kMaxAdminRequestLen) return Bad("request too long");
  CBS cbs = ToCbs(payload);
  uint8_t version = 0;
  uint32_t num_args = 0;
  if (!CBS_get_u8(&cbs, &version)) return Bad("request empty");
  if (version != kAdminProtocolVersion) {
    return Bad(StrCat("request of protocol version ", version, "; this server speaks ",
                      kAdminProtocolVersion, " (use the p2proxy-server binary of this version)"));
  }
  if (!CBS_get_u32(&cbs, &num_args)) return Bad("request truncated (argument count)");
  if (num_args > kMaxAdminArgs) return Bad(StrCat("request has more than ", kMaxAdminArgs, " args"));
  // Each arg takes at least 4 bytes, so a count the payload cannot hold is refused before any
  // allocation.
  if (num_args > CBS_len(&cbs) / 4) return Bad("request truncated (fewer args than counted)");
  std::vector<std::string> args(num_args);
  for (auto& a : args) {
    if (!ReadString(&cbs, kMaxAdminRequestLen, &a)) return Bad("request truncated (an argument)");
    if (a.find('\0') != std::string::npos) return Bad("request: an argument holds a NUL byte");
  }
  if (CBS_len(&cbs) != 0) return Bad("request: bytes after the last argument");
  return args;
}

absl::StatusOr<AdminResult> DecodeAdminResponse(absl::string_view payload) {
  if (payload.size() > kMaxAdminResponseLen) return Bad("response too long");
  CBS cbs = ToCbs(payload);
  uint8_t version = 0;
  uint8_t code = 0;
  AdminResult r;
  if (!CBS_get_u8(&cbs, &version) || version != kAdminProtocolVersion) {
    return Bad("response of another protocol version (is the server the same version?)");
  }
  if (!CBS_get_u8(&cbs, &code) || !ReadString(&cbs, kMaxAdminResponseLen, &r.out) ||
      !ReadString(&cbs, kMaxAdminResponseLen, &r.err) || CBS_len(&cbs) != 0) {
    return Bad("malformed response");
  }
  r.exit_code = code;
  return r;
}

// ---- AdminServer -----------------------------------------------------------------------------

struct AdminServer::Conn : net::DeferredDeletable {
  explicit Conn(net::Loop& loop) : deadline(loop) {}
  AdminServer* server = nullptr;
  uint64_t id = 0;
  uid_t uid = 0;
  net::UvHandle<uv_pipe_t> pipe;
  net::Timer deadline;
  std::string in;
  bool answered = false;  // a response is being written: ignore further input
  char buf[16 * 1024];
};

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Listen(net::Loop& loop,
                                                                 const std::string& path,
                                                                 AdminHost& host,
                                                                 AdminServerOptions options) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(StrCat("admin: socket path ", path.empty() ? "empty" : "too long",
                                             " (at most ", sizeof(sockaddr_un::sun_path) - 1,
                                             " bytes): ", path));
  }
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          StrCat("admin: cannot create ", dir, ": ", base::ErrnoText(errno), " (run as root)"));
    }
  }
  struct stat st{};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          StrCat("admin: ", path, " exists and is not a socket; move it away or choose another "
                 "--admin_socket"));
    }
    if (IsLive(path)) {
      return absl::AlreadyExistsError(
          StrCat("admin: ", path, " is served by another process (is p2proxy-server running already?)"));
    }
    if (unlink(path.c_str()) != 0) {
      return absl::PermissionDeniedError(
          StrCat("admin: cannot replace the stale socket ", path, ": ", base::ErrnoText(errno)));
    }
    P2P_LOG(kInfo, "admin.stale_socket_replaced").Kv("path", path);
  }
  std::unique_ptr<AdminServer> s(new AdminServer(loop, path, host, std::move(options)));
  s->gid_ = LookUpGroup(s->options_.group);
  uv_pipe_init(loop.uv(), s->pipe_.get(), 0);
  s->pipe_.MarkInitialized();
  s->pipe_->data = s.get();
  const mode_t old_mask = umask(0177);  // the socket file is born 0600: no window for others
  int rc = uv_pipe_bind(s->pipe_.get(), path.c_str());
  umask(old_mask);
  if (rc != 0) {
    return absl::UnavailableError(StrCat("admin: bind ", path, ": ", uv_strerror(rc)));
  }
  if (s->gid_) {
    if (chown(path.c_str(), static_cast<uid_t>(-1), *s->gid_) != 0 ||
        chmod(path.c_str(), 0660) != 0) {
      const int e = errno;
      unlink(path.c_str());
      return absl::PermissionDeniedError(StrCat("admin: cannot give group ", s->options_.group,
                                                " access to ", path, ": ", base::ErrnoText(e)));
    }
  }
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(s->pipe_.get()), 16,
                 [](uv_stream_t* h, int status) {
                   auto* self = static_cast<AdminServer*>(h->data);
                   if (self && status == 0) self->OnConnection();
                 });
  if (rc != 0) {
    unlink(path.c_str());
    return absl::UnavailableError(StrCat("admin: listen ", path, ": ", uv_strerror(rc)));
  }
  P2P_LOG(kInfo, "admin.listening")
      .Kv("path", path)
      .Kv("mode", s->gid_ ? "0660" : "0600")
      .Kv("group", s->gid_ ? s->options_.group : "");
  return s;
}

AdminServer::AdminServer(net::Loop& loop, std::string path, AdminHost& host,
                         AdminServerOptions options)
    : loop_(loop), path_(std::move(path)), host_(host), options_(std::move(options)) {}

AdminServer::~AdminServer() {
  for (auto& c : conns_) {
    c->deadline.Stop();
    c->pipe.Close();
  }
  conns_.clear();
  pipe_.Close();
  unlink(path_.c_str());
}

bool AdminServer::PeerAllowed(int fd, std::string* why, uid_t* uid_out) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
    *why = StrCat("cannot read the peer's credentials: ", base::ErrnoText(errno));
    return false;
  }
  *uid_out = cred.uid;
  if (cred.uid == 0 || cred.uid == geteuid()) return true;
  if (gid_ && InGroup(cred.uid, cred.gid, *gid_)) return true;
  *why = gid_ ? StrCat("uid ", cred.uid, " is neither root nor in group ", options_.group,
                       ": run it as root (sudo) or add the user to group ", options_.group)
              : StrCat("uid ", cred.uid, " is not root: run it as root (sudo)");
  return false;
}

void AdminServer::OnConnection() {
  auto c = std::make_unique<Conn>(loop_);
  c->server = this;
  c->id = next_conn_id_++;
  uv_pipe_init(loop_.uv(), c->pipe.get(), 0);
  c->pipe.MarkInitialized();
  c->pipe->data = c.get();
  if (uv_accept(reinterpret_cast<uv_stream_t*>(pipe_.get()),
                reinterpret_cast<uv_stream_t*>(c->pipe.get())) != 0) {
    return;  // c closes its pipe on destruction
  }
  Conn* conn = c.get();
  conns_.push_back(std::move(c));
  if (conns_.size() > options_.max_connections) {
    ++stats_.too_many;
    return Drop(conn, "too_many_connections");
  }
  // The deadline covers everything, a refusal's answer included.
  conn->deadline.Start(options_.deadline, [this, conn] {
    ++stats_.timed_out;
    Drop(conn, "deadline");
  });
  uv_os_fd_t fd = -1;
  std::string why;
  if (uv_fileno(conn->pipe.handle(), &fd) != 0 || !PeerAllowed(fd, &why, &conn->uid)) {
    ++stats_.refused_peers;
    P2P_LOG(kWarn, "admin.peer_refused").Kv("conn", conn->id).Kv("reason", why);
    AdminResult refused;
    refused.exit_code = 1;
    refused.err = StrCat("permission denied: ", why, "\n");
    return Answer(conn, refused);
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(conn->pipe.get()),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* cn = static_cast<Conn*>(h->data);
        *buf = cn ? uv_buf_init(cn->buf, sizeof(cn->buf)) : uv_buf_init(nullptr, 0);
      },
      [](uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
        auto* cn = static_cast<Conn*>(st->data);
        if (!cn) return;
        auto* self = cn->server;
        if (nread < 0) {
          if (!cn->answered) ++self->stats_.bad_requests;
          return self->Drop(cn, cn->answered ? "" : "eof_before_request");
        }
        if (nread > 0) self->OnData(cn, buf->base, static_cast<size_t>(nread));
      });
}

void AdminServer::OnData(Conn* c, const char* data, size_t len) {
  if (c->answered) {
    ++stats_.bad_requests;
    return Drop(c, "data_after_request");
  }
  c->in.append(data, len);
  if (c->in.size() < 4) return;
  const uint32_t want = GetU32(c->in.data());
  if (want > kMaxAdminRequestLen) {
    ++stats_.bad_requests;
    return Drop(c, StrCat("request_too_long len=", want));
  }
  if (c->in.size() < 4 + size_t{want}) return;
  if (c->in.size() > 4 + size_t{want}) {
    ++stats_.bad_requests;
    return Drop(c, "bytes_after_request");
  }
  auto args = DecodeAdminRequest(absl::string_view(c->in).substr(4));
  std::fill(c->in.begin(), c->in.end(), '\0');
  c->in.clear();
  if (!args.ok()) {
    ++stats_.bad_requests;
    return Drop(c, args.status().message());
  }
  AdminResult result = RunAdmin(host_, *args);
  ++stats_.served;
  // Logs name the command, not its arguments.
  P2P_LOG(kInfo, "admin.command")
      .Kv("conn", c->id)
      .Kv("uid", c->uid)
      .Kv("command", args->empty() ? "" : StrCat((*args)[0], args->size() > 1 ? " " : "",
                                                  args->size() > 1 ? (*args)[1] : ""))
      .Kv("exit", result.exit_code);
  if (result.out.size() + result.err.size() + 10 > kMaxAdminResponseLen) {
    P2P_LOG(kWarn, "admin.response_too_long").Kv("conn", c->id).Kv("len", result.out.size());
    result.exit_code = 1;
    result.err = StrCat("the answer is ", result.out.size(),
                        " bytes, above the 16 MiB limit; narrow it (e.g. --limit)\n");
    result.out.clear();
  }
  Answer(c, result);
}

void AdminServer::Answer(Conn* c, const AdminResult& result) {
  c->answered = true;
  auto* req = new WriteReq();
  req->data = EncodeAdminResponse(result);
  req->req.data = req;
  uv_buf_t b = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  const int rc = uv_write(&req->req, reinterpret_cast<uv_stream_t*>(c->pipe.get()), &b, 1,
                          [](uv_write_t* w, int) {
                            auto* r = static_cast<WriteReq*>(w->data);
                            // The answer may hold a token: wipe it.
                            std::fill(r->data.begin(), r->data.end(), '\0');
                            auto* cn = static_cast<Conn*>(w->handle->data);
                            delete r;
                            if (cn) cn->server->CloseConn(cn);
                          });
  if (rc != 0) {
    std::fill(req->data.begin(), req->data.end(), '\0');
    delete req;
    Drop(c, StrCat("write_failed ", uv_strerror(rc)));
  }
}

void AdminServer::Drop(Conn* c, absl::string_view reason) {
  if (!reason.empty()) {
    P2P_LOG(kWarn, "admin.connection_closed").Kv("conn", c->id).Kv("reason", reason);
  }
  CloseConn(c);
}

void AdminServer::CloseConn(Conn* c) {
  c->deadline.Stop();
  c->pipe.Close();  // clears data: queued callbacks see the connection gone
  std::fill(c->in.begin(), c->in.end(), '\0');
  for (auto& owned : conns_) {
    if (owned.get() == c) {
      loop_.DeferDelete(std::move(owned));
      break;
    }
  }
  conns_.erase(std::remove(conns_.begin(), conns_.end(), nullptr), conns_.end());
}

// ---- RunAdminClient --------------------------------------------------------------------------

int RunAdminClient(const std::string& path, const std::vector<std::string>& args,
                   std::ostream& out, std::ostream& err, absl::Duration timeout) {
  const std::string unreachable =
      StrCat("cannot reach the server at ", path, ": is p2proxy-server running? (");
  if (args.size() > kMaxAdminArgs) {
    err << "admin: more than " << kMaxAdminArgs << " arguments\n";
    return 2;
  }
  const std::string request = EncodeAdminRequest(args);
  if (request.size() - 4 > kMaxAdminRequestLen) {
    err << "admin: the command is longer than " << kMaxAdminRequestLen << " bytes\n";
    return 2;
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    err << unreachable << "socket path too long)\n";
    return 1;
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err << unreachable << "socket: " << base::ErrnoText(errno) << ")\n";
    return 1;
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(timeout));
  tv.tv_usec = static_cast<suseconds_t>(absl::ToInt64Microseconds(timeout) % 1000000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
    const int e = errno;
    err << unreachable << "connect: " << base::ErrnoText(e) << ")\n";
    if (e == EACCES) err << "permission denied: run it as root (sudo) or as a member of group p2proxy\n";
    return 1;
  }
  // Send; a server that refused the peer answers without reading, so a failed send still
  // looks for its answer.
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  auto read_all = [&](char* p, size_t len) {
    size_t got = 0;
    while (got < len) {
      const ssize_t n = recv(fd, p + got, len - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  };
  char header[4];
  errno = 0;
  if (!read_all(header, sizeof(header))) {
    err << "admin: the server at " << path << " closed the connection without an answer"
        << (errno == EAGAIN || errno == EWOULDBLOCK ? " (timed out)" : "") << "\n";
    return 1;
  }
  const uint32_t len = GetU32(header);
  if (len > kMaxAdminResponseLen) {
    err << "admin: the server's answer is too long (" << len << " bytes)\n";
    return 1;
  }
  std::string payload(len, '\0');
  if (!read_all(payload.data(), len)) {
    err << "admin: the server's answer was cut short\n";
    return 1;
  }
  auto result = DecodeAdminResponse(payload);
  if (!result.ok()) {
    err << result.status().message() << "\n";
    return 1;
  }
  out << result->out;
  err << result->err;
  out.flush();
  return result->exit_code;
}

}  // namespace p2proxy::server
