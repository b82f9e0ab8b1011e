// tcp_stream.cc: LwipTcpStream, TcpListener, TcpConnector.
#include "stack/tcp_stream.h"

#include <algorithm>

extern "C" {
#include "lwip/tcp.h"
}

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace p2proxy::stack {
namespace {

// ErrName describes lwIP's err_t values a connection can end with.
const char* ErrName(err_t err) {
  switch (err) {
    case ERR_OK: return "ok";
    case ERR_MEM: return "out of memory";
    case ERR_TIMEOUT: return "timed out";
    case ERR_RTE: return "no route";
    case ERR_ABRT: return "connection aborted";
    case ERR_RST: return "connection reset";
    case ERR_CLSD: return "connection closed";
    case ERR_CONN: return "not connected";
    case ERR_USE: return "address in use";
    default: return "error";
  }
}

}  // namespace

// LwipTcpCallbacks holds the C callbacks lwIP calls, with access to the classes' internals.
struct LwipTcpCallbacks {
  static err_t Recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err) {
    auto* s = static_cast<LwipTcpStream*>(arg);
    if (!s) {
      if (p) {
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
      }
      return ERR_OK;
    }
    if (p == nullptr) {
      s->fin_received_ = true;
    } else {
      s->rx_.push_back(p);
    }
    s->DeliverReceived();
    return ERR_OK;
  }

  static err_t Sent(void* arg, struct tcp_pcb*, u16_t) {
    auto* s = static_cast<LwipTcpStream*>(arg);
    if (s) s->PushToLwip();
    return ERR_OK;
  }

  // Poll runs every second for each connection: a write that lwIP refused for lack of segments
  // (ERR_MEM) is retried here, since no "sent" callback comes for a connection with nothing in
  // flight.
  static err_t Poll(void* arg, struct tcp_pcb*) {
    auto* s = static_cast<LwipTcpStream*>(arg);
    if (s && !s->tx_.empty()) s->PushToLwip();
    return ERR_OK;
  }

  static void Err(void* arg, err_t err) {
    auto* s = static_cast<LwipTcpStream*>(arg);
    if (!s) return;
    s->pcb_ = nullptr;  // lwIP has freed it
    s->Fail(absl::UnavailableError(absl::StrCat("tcp (overlay): ", ErrName(err))));
  }

  static err_t Accept(void* arg, struct tcp_pcb* newpcb, err_t err) {
    auto* l = static_cast<TcpListener*>(arg);
    if (!l || err != ERR_OK || !newpcb) return ERR_VAL;
    l->stack_.CountAccepted();
    base::IpAddress peer = base::IpAddress::FromBytes(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&ip_2_ip4(&newpcb->remote_ip)->addr), 4));
    const uint16_t port = newpcb->remote_port;
    auto stream = std::make_unique<LwipTcpStream>(l->stack_, newpcb);
    l->accept_(std::move(stream), peer, port);
    return ERR_OK;
  }

  static err_t Connected(void* arg, struct tcp_pcb* pcb, err_t err) {
    std::unique_ptr<TcpConnector> c(static_cast<TcpConnector*>(arg));
    tcp_arg(pcb, nullptr);
    tcp_err(pcb, nullptr);
    if (err != ERR_OK) {
      c->done_(absl::UnavailableError(absl::StrCat("tcp (overlay): connect: ", ErrName(err))));
      return ERR_OK;
    }
    c->done_(std::unique_ptr<net::Stream>(new LwipTcpStream(c->stack_, pcb)));
    return ERR_OK;
  }

  static void ConnectErr(void* arg, err_t err) {
    std::unique_ptr<TcpConnector> c(static_cast<TcpConnector*>(arg));
    if (!c) return;
    c->done_(absl::UnavailableError(absl::StrCat("tcp (overlay): connect: ", ErrName(err))));
  }
};

LwipTcpStream::LwipTcpStream(NetStack& stack, struct tcp_pcb* pcb) : stack_(stack), pcb_(pcb) {
  tcp_arg(pcb_, this);
  tcp_recv(pcb_, &LwipTcpCallbacks::Recv);
  tcp_sent(pcb_, &LwipTcpCallbacks::Sent);
  tcp_err(pcb_, &LwipTcpCallbacks::Err);
  tcp_poll(pcb_, &LwipTcpCallbacks::Poll, 2);  // in units of lwIP's 500 ms coarse timer
  tcp_nagle_disable(pcb_);
}

LwipTcpStream::~LwipTcpStream() {
  if (destroyed_) *destroyed_ = true;
  Close();
}

void LwipTcpStream::Detach() {
  if (!pcb_) return;
  tcp_arg(pcb_, nullptr);
  tcp_recv(pcb_, nullptr);
  tcp_sent(pcb_, nullptr);
  tcp_err(pcb_, nullptr);
  tcp_poll(pcb_, nullptr, 0);
}

void LwipTcpStream::SetHandler(net::StreamHandler* handler) {
  handler_ = handler;
  if (!pending_error_.ok() && handler_) {
    absl::Status st = std::move(pending_error_);
    pending_error_ = absl::OkStatus();
    handler_->OnError(st);
    return;
  }
  DeliverReceived();
}

void LwipTcpStream::DeliverReceived() {
  bool destroyed = false;
  bool* outer = destroyed_;
  destroyed_ = &destroyed;
  while (handler_ && !paused_ && !rx_.empty() && !closed_) {
    struct pbuf* p = rx_.front();
    rx_.pop_front();
    const u16_t total = p->tot_len;
    for (struct pbuf* q = p; q && !destroyed && !closed_; q = q->next) {
      handler_->OnData(base::ByteSpan(static_cast<const uint8_t*>(q->payload), q->len));
    }
    pbuf_free(p);
    if (destroyed) {
      if (outer) *outer = true;
      return;
    }
    // Only now does the window reopen: this is where a slow reader pushes back on the peer.
    if (pcb_) tcp_recved(pcb_, total);
  }
  if (handler_ && !paused_ && rx_.empty() && fin_received_ && !end_delivered_ && !closed_) {
    end_delivered_ = true;
    handler_->OnEnd();
    if (destroyed) {
      if (outer) *outer = true;
      return;
    }
  }
  destroyed_ = outer;
  stack_.AfterActivity();
}

void LwipTcpStream::Write(base::ByteSpan data, WriteCallback done) {
  WriteOwned(std::vector<uint8_t>(data.begin(), data.end()), std::move(done));
}

void LwipTcpStream::WriteOwned(std::vector<uint8_t> data, WriteCallback done) {
  if (closed_ || shutdown_requested_ || !pcb_) {
    if (done) {
      stack_.loop().Post([done = std::move(done)]() mutable {
        done(absl::FailedPreconditionError("tcp (overlay): write after close or shutdown"));
      });
    }
    return;
  }
  tx_queued_ += data.size();
  tx_.push_back(Pending{std::move(data), 0, std::move(done)});
  PushToLwip();
}

void LwipTcpStream::PushToLwip() {
  if (!pcb_ || closed_) return;
  bool wrote = false;
  bool drained_now = false;
  while (!tx_.empty()) {
    Pending& w = tx_.front();
    while (w.offset < w.data.size()) {
      const size_t room = tcp_sndbuf(pcb_);
      if (room == 0 || tcp_sndqueuelen(pcb_) >= TCP_SND_QUEUELEN) break;
      const size_t n = std::min({room, w.data.size() - w.offset, size_t{0xffff}});
      const bool more = w.offset + n < w.data.size() || tx_.size() > 1;
      if (tcp_write(pcb_, w.data.data() + w.offset, static_cast<u16_t>(n),
                    TCP_WRITE_FLAG_COPY | (more ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK) {
        break;
      }
      w.offset += n;
      tx_queued_ -= n;
      wrote = true;
    }
    if (w.offset < w.data.size()) break;
    WriteCallback done = std::move(w.done);
    tx_.pop_front();
    drained_now = tx_.empty();
    if (done) done(absl::OkStatus());
  }
  if (wrote) tcp_output(pcb_);
  if (tx_.empty() && shutdown_requested_ && !shutdown_done_ && pcb_) {
    shutdown_done_ = true;
    tcp_shutdown(pcb_, 0, 1);
  }
  stack_.AfterActivity();
  if (drained_now && handler_) handler_->OnWriteDrained();
}

void LwipTcpStream::Shutdown() {
  if (shutdown_requested_ || closed_) return;
  shutdown_requested_ = true;
  PushToLwip();
}

void LwipTcpStream::Close() { Teardown(/*reset=*/false); }

void LwipTcpStream::Abort() { Teardown(/*reset=*/true); }

void LwipTcpStream::Teardown(bool reset) {
  if (closed_) return;
  closed_ = true;
  for (struct pbuf* p : rx_) pbuf_free(p);
  rx_.clear();
  tx_.clear();
  tx_queued_ = 0;
  if (pcb_) {
    Detach();
    if (reset || tcp_close(pcb_) != ERR_OK) tcp_abort(pcb_);
    pcb_ = nullptr;
    stack_.AfterActivity();
  }
}

void LwipTcpStream::Fail(const absl::Status& status) {
  if (closed_) return;
  net::StreamHandler* h = handler_;
  closed_ = true;
  for (struct pbuf* p : rx_) pbuf_free(p);
  rx_.clear();
  tx_.clear();
  tx_queued_ = 0;
  if (h) {
    h->OnError(status);
  } else {
    pending_error_ = status;
  }
}

void LwipTcpStream::PauseReading() { paused_ = true; }

void LwipTcpStream::ResumeReading() {
  if (!paused_) return;
  paused_ = false;
  DeliverReceived();
}

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Create(NetStack& stack, const base::IpAddress& addr,
                                                                  uint16_t port, NetStack::AcceptFn accept) {
  if (addr.family != base::IpAddress::kV4) return absl::InvalidArgumentError("stack: listen address must be IPv4");
  std::unique_ptr<TcpListener> l(new TcpListener(stack, std::move(accept)));
  struct tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
  if (!pcb) return absl::ResourceExhaustedError("stack: out of TCP control blocks");
  ip_addr_t ip;
  IP_ADDR4(&ip, addr.bytes[0], addr.bytes[1], addr.bytes[2], addr.bytes[3]);
  if (tcp_bind(pcb, &ip, port) != ERR_OK) {
    tcp_close(pcb);
    return absl::AlreadyExistsError(absl::StrCat("stack: ", addr.ToString(), ":", port, " is already in use"));
  }
  l->pcb_ = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
  if (!l->pcb_) {
    tcp_close(pcb);
    return absl::ResourceExhaustedError("stack: tcp_listen failed");
  }
  tcp_arg(l->pcb_, l.get());
  tcp_accept(l->pcb_, &LwipTcpCallbacks::Accept);
  return l;
}

TcpListener::~TcpListener() {
  if (pcb_) {
    tcp_arg(pcb_, nullptr);
    tcp_accept(pcb_, nullptr);
    tcp_close(pcb_);
  }
}

void TcpConnector::Start(NetStack& stack, const base::IpAddress& addr, uint16_t port, NetStack::ConnectFn done) {
  struct tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
  if (!pcb) {
    stack.loop().Post([done = std::move(done)]() mutable {
      done(absl::ResourceExhaustedError("stack: out of TCP control blocks"));
    });
    return;
  }
  // Bind to the node address explicitly: the netif's address briefly changes while a packet
  // for a served address is processed.
  ip_addr_t local, remote;
  const auto& node = stack.node_address();
  IP_ADDR4(&local, node.bytes[0], node.bytes[1], node.bytes[2], node.bytes[3]);
  IP_ADDR4(&remote, addr.bytes[0], addr.bytes[1], addr.bytes[2], addr.bytes[3]);
  tcp_bind(pcb, &local, 0);
  auto* c = new TcpConnector(stack, std::move(done));
  c->pcb_ = pcb;
  tcp_arg(pcb, c);
  tcp_err(pcb, &LwipTcpCallbacks::ConnectErr);
  if (tcp_connect(pcb, &remote, port, &LwipTcpCallbacks::Connected) != ERR_OK) {
    tcp_arg(pcb, nullptr);
    tcp_err(pcb, nullptr);
    tcp_abort(pcb);
    std::unique_ptr<TcpConnector> owned(c);
    stack.loop().Post([done = std::move(owned->done_)]() mutable {
      done(absl::UnavailableError("stack: tcp_connect failed"));
    });
    return;
  }
  stack.AfterActivity();
}

}  // namespace p2proxy::stack
