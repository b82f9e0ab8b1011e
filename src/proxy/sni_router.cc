// sni_router.cc: SniRouter and its per-connection state machine.
#include "proxy/sni_router.h"

#include <utility>

#include "base/log.h"
#include "net/tcp.h"
#include "net/timer.h"
#include "proxy/splice.h"

namespace p2proxy::proxy {
namespace {

// Room beyond max_hello_bytes for record headers: a hello split over many records still
// fits, but a peer cannot make us buffer without bound while the peek waits.
constexpr size_t kRecordSlack = 4096;

}  // namespace

Route::Dial DialTcp(net::Loop& loop, const base::SocketAddress& to) {
  return [&loop, to](Route::DialDone done) mutable {
    net::TcpStream::Connect(loop, to, [done = std::move(done)](
                                          absl::StatusOr<std::unique_ptr<net::TcpStream>> s) mutable {
      if (!s.ok()) {
        done(s.status());
      } else {
        done(std::unique_ptr<net::Stream>(std::move(*s)));
      }
    });
  };
}

// Conn is one client connection, from Accept until it is closed or its splice ends. It is the
// client's handler until the splice takes over.
class SniRouter::Conn final : public net::DeferredDeletable, public net::StreamHandler {
 public:
  Conn(SniRouter& router, std::unique_ptr<net::Stream> client, ConnectionMeta meta)
      : router_(router),
        client_(std::move(client)),
        meta_(std::move(meta)),
        peek_(std::make_unique<tls::ClientHelloPeek>(router.options_.max_hello_bytes)),
        timer_(router.loop_) {}

  void Start() {
    timer_.Start(absl::Milliseconds(router_.options_.hello_timeout_ms), [this] { OnHelloTimeout(); });
    client_->SetHandler(this);
  }

  void OnData(base::ByteSpan data) override {
    if (phase_ != Phase::kPeeking) return;  // draining: what a refused client sends is dropped
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    switch (peek_->Parse(buffer_)) {
      case tls::ClientHelloPeek::Result::kContinue:
        if (buffer_.size() > router_.options_.max_hello_bytes + kRecordSlack) {
          Drop(&router_.counters_.too_large);
        }
        return;
      case tls::ClientHelloPeek::Result::kError:
        P2P_LOG_RATELIMITED(router_.log_limiter_, kDebug, "sni_router.not_tls")
            .Kv("peer", meta_.peer.ToString())
            .Kv("reason", std::string(peek_->error()));
        Drop(&router_.counters_.not_tls);
        return;
      case tls::ClientHelloPeek::Result::kDone:
        OnHello();
        return;
    }
  }

  void OnEnd() override { OnClientGone(); }
  void OnError(const absl::Status&) override { OnClientGone(); }

 private:
  enum class Phase { kPeeking, kDialing, kDraining, kSpliced, kGone };

  void OnHello() {
    timer_.Stop();
    std::optional<Route> route = router_.decide_(peek_->info(), meta_);
    if (!route || !route->dial) {
      RefuseUnknownName();
      return;
    }
    peek_.reset();  // its copy of the hello is no longer needed
    proxy_header_ = std::move(route->proxy_header);
    // Bytes past the hello wait in the peer's window, not here, until the target is there.
    client_->PauseReading();
    phase_ = Phase::kDialing;
    timer_.Start(absl::Milliseconds(router_.options_.dial_timeout_ms),
                 [this] { Drop(&router_.counters_.dial_failed); });
    // Dial on a later turn, so a dial that completes at once does not run inside our read
    // callback. |alive| tells a late completion that this connection is gone.
    router_.loop_.Post([this, alive = std::weak_ptr<bool>(alive_), dial = std::move(route->dial)]() mutable {
      if (alive.expired()) return;
      dial([this, alive](absl::StatusOr<std::unique_ptr<net::Stream>> target) {
        if (alive.expired()) return;  // |target| (if any) is closed as it goes out of scope
        OnDialed(std::move(target));
      });
    });
  }

  void OnDialed(absl::StatusOr<std::unique_ptr<net::Stream>> target) {
    if (phase_ != Phase::kDialing) return;
    if (!target.ok() || *target == nullptr) {
      P2P_LOG_RATELIMITED(router_.log_limiter_, kInfo, "sni_router.dial_failed")
          .Kv("peer", meta_.peer.ToString())
          .Kv("error", target.ok() ? "dial gave no stream" : target.status().ToString());
      Drop(&router_.counters_.dial_failed);
      return;
    }
    timer_.Stop();
    std::unique_ptr<net::Stream> out = std::move(*target);
    if (!proxy_header_.empty()) out->WriteOwned(std::move(proxy_header_));
    out->WriteOwned(std::move(buffer_));
    phase_ = Phase::kSpliced;
    ++router_.counters_.routed;
    net::Stream* client = client_.get();
    splice_ = std::make_unique<Splice>(std::move(client_), std::move(out),
                                       [this](Splice*, const Splice::Stats&, const absl::Status& status) {
                                         OnSpliceDone(status);
                                       });
    splice_->Start();
    client->ResumeReading();  // the splice is its handler now
  }

  void OnSpliceDone(const absl::Status& status) {
    ++(status.ok() ? router_.counters_.completed : router_.counters_.splice_errors);
    Gone();
  }

  // RefuseUnknownName sends the fatal alert, half-closes, and waits (bounded) for the client to
  // close, so the alert is read rather than lost to a reset.
  void RefuseUnknownName() {
    ++router_.counters_.no_route;
    P2P_LOG_RATELIMITED(router_.log_limiter_, kDebug, "sni_router.no_route")
        .Kv("peer", meta_.peer.ToString())
        .Kv("sni", peek_->info().sni);
    phase_ = Phase::kDraining;
    peek_.reset();
    buffer_.clear();
    client_->WriteOwned(tls::AlertRecord(tls::kAlertUnrecognizedName));
    client_->Shutdown();
    timer_.Start(absl::Milliseconds(router_.options_.linger_ms), [this] { Drop(nullptr); });
  }

  void OnHelloTimeout() { Drop(&router_.counters_.timeouts); }

  void OnClientGone() {
    if (phase_ == Phase::kDraining) {
      Drop(nullptr);  // the refused client closed, as hoped
    } else {
      Drop(&router_.counters_.aborted);
    }
  }

  // Drop closes the client now and counts |counter| (if any).
  void Drop(uint64_t* counter) {
    if (phase_ == Phase::kGone || phase_ == Phase::kSpliced) return;
    if (counter) ++*counter;
    if (client_) client_->Close();
    Gone();
  }

  void Gone() {
    phase_ = Phase::kGone;
    timer_.Stop();
    alive_.reset();
    router_.Remove(this);
  }

  SniRouter& router_;
  std::unique_ptr<net::Stream> client_;  // until the splice takes it
  ConnectionMeta meta_;
  std::unique_ptr<tls::ClientHelloPeek> peek_;
  std::vector<uint8_t> buffer_;  // everything read from the client so far
  net::Timer timer_;
  Phase phase_ = Phase::kPeeking;
  std::vector<uint8_t> proxy_header_;
  std::unique_ptr<Splice> splice_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // watched by the dial callbacks
};

SniRouter::SniRouter(net::Loop& loop, Decide decide, Options options)
    : loop_(loop), decide_(std::move(decide)), options_(options) {}

SniRouter::SniRouter(net::Loop& loop, Decide decide) : SniRouter(loop, std::move(decide), Options()) {}

SniRouter::~SniRouter() = default;

void SniRouter::Accept(std::unique_ptr<net::Stream> client, ConnectionMeta meta) {
  ++counters_.accepted;
  auto conn = std::make_unique<Conn>(*this, std::move(client), std::move(meta));
  Conn* raw = conn.get();
  conns_.emplace(raw, std::move(conn));
  raw->Start();
}

void SniRouter::Remove(Conn* conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> owned = std::move(it->second);
  conns_.erase(it);
  loop_.DeferDelete(std::move(owned));
}

}  // namespace p2proxy::proxy
