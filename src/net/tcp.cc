// tcp.cc: TcpStream, TcpListener and outbound connect over libuv.
#include "net/tcp.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace p2proxy::net {
namespace {

absl::Status UvError(absl::string_view what, int rc) {
  std::string msg = absl::StrCat("tcp: ", what, ": ", uv_strerror(rc));
  switch (rc) {
    case UV_ECONNREFUSED:
    case UV_ECONNRESET:
    case UV_ETIMEDOUT:
    case UV_EPIPE:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
      return absl::UnavailableError(msg);
    case UV_ECANCELED:
      return absl::CancelledError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

// A write request is released to libuv on submit and re-adopted in its callback.
struct TcpStream::WriteReq {
  uv_write_t req;
  std::vector<std::vector<uint8_t>> chunks;
  std::vector<WriteCallback> done;
};

struct TcpStream::ConnectReq {
  uv_connect_t req;
  std::unique_ptr<TcpStream> stream;
  ConnectCallback done;
};

TcpStream::TcpStream(Loop& loop) : loop_(loop) {
  uv_tcp_init(loop.uv(), tcp_.get());
  tcp_.MarkInitialized();
  tcp_->data = this;
}

TcpStream::~TcpStream() {
  if (destroyed_) *destroyed_ = true;
  if (flush_token_) *flush_token_ = nullptr;
}

void TcpStream::Connect(Loop& loop, const SocketAddress& to, ConnectCallback done) {
  auto* req = new ConnectReq();
  req->stream.reset(new TcpStream(loop));
  req->done = std::move(done);
  req->req.data = req;
  int rc = uv_tcp_connect(&req->req, req->stream->tcp_.get(), to.sa(), [](uv_connect_t* r, int status) {
    std::unique_ptr<ConnectReq> req(static_cast<ConnectReq*>(r->data));
    if (status < 0) {
      req->done(UvError(absl::StrCat("connect"), status));
      return;
    }
    uv_tcp_nodelay(req->stream->tcp_.get(), 1);
    req->done(std::move(req->stream));
  });
  if (rc != 0) {
    std::unique_ptr<ConnectReq> owned(req);
    auto status = UvError(absl::StrCat("connect ", to.ToString()), rc);
    // Report on a later turn, as for every other outcome.
    loop.Post([done = std::move(owned->done), status]() mutable { done(status); });
  }
}

absl::StatusOr<std::unique_ptr<TcpStream>> TcpStream::Adopt(Loop& loop, int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    const int e = type == 0 ? errno : 0;
    if (e != EBADF) ::close(fd);  // ours to close, unless it was not open at all
    return absl::InvalidArgumentError(absl::StrCat("adopt socket: descriptor ", fd, " is not a stream socket",
                                                   e != 0 ? absl::StrCat(" (", strerror(e), ")") : ""));
  }
  std::unique_ptr<TcpStream> s(new TcpStream(loop));
  const int rc = uv_tcp_open(s->tcp_.get(), fd);
  if (rc != 0) {
    ::close(fd);
    return UvError("adopt socket", rc);
  }
  return s;
}

void TcpStream::SetHandler(StreamHandler* handler) {
  handler_ = handler;
  UpdateReading();
}

void TcpStream::UpdateReading() {
  const bool want = handler_ && !paused_ && !eof_ && !closed_;
  if (want && !reading_) {
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_.get()), &TcpStream::OnAlloc,
                      &TcpStream::OnRead) == 0) {
      reading_ = true;
    }
  } else if (!want && reading_) {
    if (tcp_.get()) uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_.get()));
    reading_ = false;
  }
}

void TcpStream::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<TcpStream*>(h->data);
  if (!self) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  *buf = uv_buf_init(self->rx_buffer_, sizeof(self->rx_buffer_));
}

void TcpStream::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpStream*>(s->data);
  if (!self || nread == 0) return;
  if (nread > 0) {
    if (!self->handler_) return;
    bool destroyed = false;
    self->destroyed_ = &destroyed;
    self->handler_->OnData(
        base::ByteSpan(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread)));
    if (!destroyed) self->destroyed_ = nullptr;
    return;
  }
  if (nread == UV_EOF) {
    self->eof_ = true;
    self->UpdateReading();
    if (self->handler_) self->handler_->OnEnd();
    return;
  }
  self->Fail(UvError("read", static_cast<int>(nread)));
}

void TcpStream::Fail(const absl::Status& status) {
  if (closed_) return;
  closed_ = true;
  UpdateReading();
  StreamHandler* h = handler_;
  tcp_.Close();
  staged_.clear();
  staged_bytes_ = 0;
  if (!staged_done_.empty()) {
    loop_.Post([dones = std::move(staged_done_), status]() mutable {
      for (auto& done : dones) {
        if (done) done(status);
      }
    });
    staged_done_.clear();
  }
  if (h) h->OnError(status);
}

bool TcpStream::TryWriteNow(base::ByteSpan* data) {
  if (closed_ || shutdown_ || !tcp_.get() || !staged_.empty() || pending_writes_ != 0 || data->empty() ||
      immediate_turn_ == loop_.Turn()) {
    return false;
  }
  immediate_turn_ = loop_.Turn();
  uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data->data())),
                             static_cast<unsigned>(data->size()));
  const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_.get()), &buf, 1);
  if (n <= 0) return false;  // UV_EAGAIN, or an error the staged write will report
  *data = data->subspan(static_cast<size_t>(n));
  // Every write is followed by OnWriteDrained once the queue is empty, as a staged one is: a
  // writer may have paused on its own buffer before this write and waits for that call.
  if (data->empty()) ScheduleFlush();
  return data->empty();
}

void TcpStream::Write(base::ByteSpan data, WriteCallback done) {
  if (!done && TryWriteNow(&data)) return;
  WriteOwned(std::vector<uint8_t>(data.begin(), data.end()), std::move(done));
}

void TcpStream::WriteOwned(std::vector<uint8_t> data, WriteCallback done) {
  if (!done) {
    base::ByteSpan rest(data);
    if (TryWriteNow(&rest)) return;
    if (rest.size() != data.size()) data.erase(data.begin(), data.end() - static_cast<ptrdiff_t>(rest.size()));
  }
  if (closed_ || shutdown_) {
    if (done) {
      loop_.Post([done = std::move(done)]() mutable {
        done(absl::FailedPreconditionError("tcp: write after close or shutdown"));
      });
    }
    return;
  }
  if (data.empty() && !done) return;
  staged_bytes_ += data.size();
  staged_.push_back(std::move(data));
  staged_done_.push_back(std::move(done));
  ScheduleFlush();
}

void TcpStream::ScheduleFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  if (!flush_token_) flush_token_ = std::make_shared<TcpStream*>(this);  // one per stream
  loop_.Post([token = flush_token_] {
    if (*token) (*token)->FlushStaged();
  });
}

void TcpStream::FlushStaged() {
  flush_posted_ = false;
  if (closed_ || !tcp_.get()) return;
  if (staged_.empty()) {
    // Only an immediate write went out this turn.
    StartPendingShutdown();
    if (pending_writes_ == 0 && handler_) handler_->OnWriteDrained();
    return;
  }
  auto req = std::make_unique<WriteReq>();
  req->chunks.swap(staged_);
  req->done.swap(staged_done_);
  staged_bytes_ = 0;
  req->req.data = req.get();
  std::vector<uv_buf_t> bufs;
  bufs.reserve(req->chunks.size());
  size_t total = 0;
  for (auto& c : req->chunks) {
    bufs.push_back(uv_buf_init(reinterpret_cast<char*>(c.data()), static_cast<unsigned>(c.size())));
    total += c.size();
  }
  // Try the socket first when nothing is queued in libuv (so order holds): a uv_write that
  // completes at once still costs an epoll_ctl on the next poll (libuv re-arms the watcher
  // when its write queue drains), one per write on a request/response connection.
  if (pending_writes_ == 0) {
    const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_.get()), bufs.data(),
                               static_cast<unsigned>(bufs.size()));
    if (n >= 0 && static_cast<size_t>(n) == total) {
      // All written. We run in a posted task, not inside the caller's Write, so the
      // completions can run here.
      bool destroyed = false;
      destroyed_ = &destroyed;
      for (auto& done : req->done) {
        if (done) done(absl::OkStatus());
        if (destroyed) return;
      }
      destroyed_ = nullptr;
      if (closed_ || !tcp_.get()) return;
      StartPendingShutdown();
      if (staged_.empty() && handler_ && !closed_) handler_->OnWriteDrained();
      return;
    }
    if (n > 0) {
      // Partly written: hand libuv the rest (the chunks stay owned by the request).
      size_t skip = static_cast<size_t>(n);
      size_t first = 0;
      while (skip >= bufs[first].len) skip -= bufs[first++].len;
      bufs.erase(bufs.begin(), bufs.begin() + static_cast<ptrdiff_t>(first));
      bufs[0].base += skip;
      bufs[0].len -= static_cast<unsigned>(skip);
    }
    // UV_EAGAIN, or an error: uv_write below queues or reports it.
  }
  int rc = uv_write(&req->req, reinterpret_cast<uv_stream_t*>(tcp_.get()), bufs.data(),
                    static_cast<unsigned>(bufs.size()), [](uv_write_t* r, int status) {
                      std::unique_ptr<WriteReq> req(static_cast<WriteReq*>(r->data));
                      auto* self = static_cast<TcpStream*>(r->handle->data);
                      if (!self) return;  // the stream is gone: no more callbacks
                      --self->pending_writes_;
                      bool destroyed = false;
                      self->destroyed_ = &destroyed;
                      const absl::Status st = status < 0 ? UvError("write", status) : absl::OkStatus();
                      for (auto& done : req->done) {
                        if (done) done(st);
                        if (destroyed) return;
                      }
                      self->destroyed_ = nullptr;
                      if (status < 0) {
                        self->Fail(st);
                      } else if (self->pending_writes_ == 0 && self->staged_.empty() && self->handler_ &&
                                 !self->closed_) {
                        self->handler_->OnWriteDrained();
                      }
                    });
  if (rc != 0) {
    auto status = UvError("write", rc);
    loop_.Post([dones = std::move(req->done), status]() mutable {
      for (auto& done : dones) {
        if (done) done(status);
      }
    });
  } else {
    ++pending_writes_;
    req.release();  // libuv holds it until the callback
  }
  StartPendingShutdown();
}

void TcpStream::StartPendingShutdown() {
  if (!shutdown_pending_) return;
  shutdown_pending_ = false;
  auto* req = new uv_shutdown_t();
  int rc = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(tcp_.get()), [](uv_shutdown_t* r, int) { delete r; });
  if (rc != 0) delete req;
}

size_t TcpStream::WriteQueueSize() const {
  if (!tcp_.get()) return 0;
  return staged_bytes_ + uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(tcp_.get()));
}

void TcpStream::Shutdown() {
  if (shutdown_ || closed_) return;
  shutdown_ = true;
  // After the staged writes (libuv's own queue is drained before its shutdown).
  shutdown_pending_ = true;
  ScheduleFlush();
}

void TcpStream::Close() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  // Close drops queued writes without callbacks (the Stream contract).
  staged_.clear();
  staged_done_.clear();
  staged_bytes_ = 0;
  tcp_.Close();
}

void TcpStream::Abort() {
  if (closed_) return;
  uv_os_fd_t fd;
  if (tcp_.get() && uv_fileno(tcp_.handle(), &fd) == 0) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  Close();
}

void TcpStream::PauseReading() {
  paused_ = true;
  UpdateReading();
}

void TcpStream::ResumeReading() {
  paused_ = false;
  UpdateReading();
}

SocketAddress TcpStream::local_address() const {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (!tcp_.get() || uv_tcp_getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

SocketAddress TcpStream::peer_address() const {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (!tcp_.get() || uv_tcp_getpeername(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Listen(Loop& loop, const SocketAddress& addr,
                                                                 AcceptCallback cb, int backlog) {
  if (!addr.valid()) return absl::InvalidArgumentError("tcp: listen address is not IPv4 or IPv6");
  std::unique_ptr<TcpListener> l(new TcpListener(loop, std::move(cb)));
  uv_tcp_init(loop.uv(), l->tcp_.get());
  l->tcp_.MarkInitialized();
  l->tcp_->data = l.get();
  int rc = uv_tcp_bind(l->tcp_.get(), addr.sa(), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(l->tcp_.get()), backlog, &TcpListener::OnConnection);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("tcp: listen ", addr.ToString(), ": ", uv_strerror(rc)));
  }
  return l;
}

void TcpListener::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<TcpListener*>(server->data);
  if (!self) return;
  if (status < 0) {
    P2P_LOG(kWarn, "tcp.accept_failed").Kv("error", uv_strerror(status));
    return;
  }
  std::unique_ptr<TcpStream> s(new TcpStream(self->loop_));
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(s->tcp_.get())) != 0) return;
  uv_tcp_nodelay(s->tcp_.get(), 1);
  self->cb_(std::move(s));
}

SocketAddress TcpListener::local_address() const {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace p2proxy::net
