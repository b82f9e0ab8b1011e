// uapi_server.cc: UapiServer over a libuv pipe.
#include "tunnel/uapi_server.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace p2proxy::tunnel {

// A connection: the client writes requests, we answer each; wg closes when done.
struct UapiServer::Conn {
  UapiServer* server;
  net::UvHandle<uv_pipe_t> pipe;
  wg::UapiRequestReader reader;
  char buf[4096];
};

namespace {

// IsLive is true if something accepts connections on |path|.
bool IsLive(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
  bool live = connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0;
  close(fd);
  return live;
}

struct WriteReq {
  uv_write_t req;
  std::string data;
};

}  // namespace

absl::StatusOr<std::unique_ptr<UapiServer>> UapiServer::Listen(net::Loop& loop, const std::string& path,
                                                                Handler handler) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("uapi: socket path too long: ", path));
  }
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat("uapi: cannot create ", dir, ": ", std::strerror(errno), " (run as root)"));
  }
  if (access(path.c_str(), F_OK) == 0) {
    if (IsLive(path)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "uapi: ", path, " is served by another process (is the interface name in use?)"));
    }
    unlink(path.c_str());
  }
  std::unique_ptr<UapiServer> s(new UapiServer(loop, path, std::move(handler)));
  uv_pipe_init(loop.uv(), s->pipe_.get(), 0);
  s->pipe_.MarkInitialized();
  s->pipe_->data = s.get();
  const mode_t old_mask = umask(0077);  // the socket file is created 0600
  int rc = uv_pipe_bind(s->pipe_.get(), path.c_str());
  umask(old_mask);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(s->pipe_.get()), 16, [](uv_stream_t* h, int status) {
      auto* self = static_cast<UapiServer*>(h->data);
      if (self && status == 0) self->OnConnection();
    });
  }
  if (rc != 0) return absl::UnavailableError(absl::StrCat("uapi: listen ", path, ": ", uv_strerror(rc)));
  P2P_LOG(kInfo, "uapi.listening").Kv("path", path);
  return s;
}

UapiServer::UapiServer(net::Loop& loop, std::string path, Handler handler)
    : loop_(loop), path_(std::move(path)), handler_(std::move(handler)) {}

UapiServer::~UapiServer() {
  conns_.clear();
  pipe_.Close();
  unlink(path_.c_str());
}

void UapiServer::OnConnection() {
  auto c = std::make_unique<Conn>();
  c->server = this;
  uv_pipe_init(loop_.uv(), c->pipe.get(), 0);
  c->pipe.MarkInitialized();
  c->pipe->data = c.get();
  if (uv_accept(reinterpret_cast<uv_stream_t*>(pipe_.get()), reinterpret_cast<uv_stream_t*>(c->pipe.get())) != 0) {
    return;
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(c->pipe.get()),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(h->data);
        *buf = conn ? uv_buf_init(conn->buf, sizeof(conn->buf)) : uv_buf_init(nullptr, 0);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(s->data);
        if (!conn) return;
        if (nread < 0) {
          conn->server->CloseConn(conn);
        } else if (nread > 0) {
          conn->server->OnData(conn, buf->base, static_cast<size_t>(nread));
        }
      });
  conns_.push_back(std::move(c));
}

void UapiServer::OnData(Conn* c, const char* data, size_t len) {
  using R = wg::UapiRequestReader::Result;
  if (c->reader.Feed(absl::string_view(data, len)) == R::kError) return CloseConn(c);
  std::string body;
  for (;;) {
    R r = c->reader.Next(&body);
    if (r == R::kNeedMore) return;
    if (r == R::kError) return CloseConn(c);
    std::string reply;
    if (r == R::kGet) {
      reply = wg::FormatUapiGet(handler_.get());
    } else {
      auto set = wg::ParseUapiSet(body);
      std::fill(body.begin(), body.end(), '\0');  // it may hold keys
      if (!set.ok()) {
        P2P_LOG(kWarn, "uapi.bad_set").Kv("error", set.status().message());
        reply = wg::FormatUapiErrno(-EINVAL);  // wg(8) reads a set's errno negated
      } else {
        reply = wg::FormatUapiErrno(-handler_.set(*set));
      }
    }
    auto* req = new WriteReq();
    req->data = std::move(reply);
    req->req.data = req;
    uv_buf_t b = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
    if (uv_write(&req->req, reinterpret_cast<uv_stream_t*>(c->pipe.get()), &b, 1,
                 [](uv_write_t* w, int) {
                   auto* r = static_cast<WriteReq*>(w->data);
                   std::fill(r->data.begin(), r->data.end(), '\0');
                   delete r;
                 }) != 0) {
      delete req;
      return CloseConn(c);
    }
  }
}

void UapiServer::CloseConn(Conn* c) {
  // Closing inside the connection's own read callback: the UvHandle frees the pipe in its close
  // callback; the Conn itself goes on a later turn.
  c->pipe->data = nullptr;
  for (auto& owned : conns_) {
    if (owned.get() == c) {
      auto doomed = std::shared_ptr<Conn>(owned.release());
      loop_.Post([doomed] {});
      break;
    }
  }
  conns_.erase(std::remove(conns_.begin(), conns_.end(), nullptr), conns_.end());
}

}  // namespace p2proxy::tunnel
