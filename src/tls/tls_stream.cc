// tls_stream.cc: TlsStream, BoringSSL driven through a BIO over the stream's own buffers.
#include "tls/tls_stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/bn.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "tls/client_hello.h"

namespace p2proxy::tls {
namespace {

// kRxLen is the plaintext buffer: one full record, or several small ones gathered into one
// OnData.
constexpr size_t kRxLen = kMaxPlaintextRecordLen;
// kRecordOverhead bounds what a record adds to its plaintext (header, explicit nonce or inner
// type, tag), to size the ciphertext buffer once per Write.
constexpr size_t kRecordOverhead = 5 + 8 + 16 + 3;

bool IsIpLiteral(const std::string& name) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, name.c_str(), &a4) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1;
}

std::vector<uint8_t> AlpnWire(const std::vector<std::string>& protos) {
  std::vector<uint8_t> wire;
  for (const std::string& p : protos) {
    wire.push_back(static_cast<uint8_t>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  return wire;
}

}  // namespace

void TlsStream::ByteQueue::Append(base::ByteSpan data) {
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (start_ > 0 && start_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(start_));
    start_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

void TlsStream::ByteQueue::Consume(size_t n) {
  start_ += n;
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  }
}

const BIO_METHOD* TlsStream::BioMethod() {
  // Made once and kept for the process's life, like BoringSSL's own static methods.
  static const BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(0, "p2proxy-tls-stream");
    if (m) {
      BIO_meth_set_read(m, &TlsStream::BioRead);
      BIO_meth_set_write(m, &TlsStream::BioWrite);
      BIO_meth_set_ctrl(m, &TlsStream::BioCtrl);
    }
    return m;
  }();
  return method;
}

int TlsStream::BioRead(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  if (!self || len <= 0) return 0;
  const size_t n = self->ReadCiphertext(reinterpret_cast<uint8_t*>(out), static_cast<size_t>(len));
  if (n == 0) {
    // Never EOF at this level: the lower stream's end is handled by TlsStream itself.
    BIO_set_retry_read(bio);
    return -1;
  }
  return static_cast<int>(n);
}

int TlsStream::BioWrite(BIO* bio, const char* in, int len) {
  BIO_clear_retry_flags(bio);
  auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
  if (!self || len < 0) return -1;
  // As bytes of the vector's own type, so the copy is one memmove, not a converting loop.
  const auto* bytes = reinterpret_cast<const uint8_t*>(in);
  self->out_.insert(self->out_.end(), bytes, bytes + len);
  return len;
}

long TlsStream::BioCtrl(BIO*, int cmd, long, void*) {
  // BIO_flush: ciphertext is handed on by FlushCiphertext after every TLS call.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int TlsStream::VerifyServer(X509_STORE_CTX* store_ctx, void* arg) {
  auto* self = static_cast<TlsStream*>(arg);
  const std::vector<uint8_t> spki = SpkiSha256(X509_STORE_CTX_get0_cert(store_ctx));
  // Not secret, but compared in constant time anyway: it costs nothing.
  if (spki.size() != self->pin_.size() || CRYPTO_memcmp(spki.data(), self->pin_.data(), spki.size()) != 0) {
    self->pin_mismatch_ = true;
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return self->verify_chain_ ? X509_verify_cert(store_ctx) : 1;
}

size_t TlsStream::ReadCiphertext(uint8_t* out, size_t len) {
  size_t n = 0;
  if (!in_.empty()) {
    n = std::min(len, in_.size());
    std::memcpy(out, in_.data(), n);
    in_.Consume(n);
  }
  if (n < len && !in_span_.empty()) {
    const size_t m = std::min(len - n, in_span_.size());
    std::memcpy(out + n, in_span_.data(), m);
    in_span_.remove_prefix(m);
    n += m;
  }
  return n;
}

TlsStream::TlsStream(net::Loop& loop, std::unique_ptr<net::Stream> lower)
    : loop_(loop), lower_(std::move(lower)), alive_(std::make_shared<TlsStream*>(this)) {}

TlsStream::~TlsStream() {
  if (destroyed_) *destroyed_ = true;
  *alive_ = nullptr;
  if (lower_) {
    // We may be inside one of the lower stream's callbacks: close it now, delete it later.
    lower_->Close();
    loop_.DeferDelete(std::move(lower_));
  }
}

std::unique_ptr<TlsStream> TlsStream::Server(net::Loop& loop, std::unique_ptr<net::Stream> lower,
                                             std::shared_ptr<const ServerCertificate> cert,
                                             std::vector<uint8_t> already_received) {
  std::unique_ptr<TlsStream> s(new TlsStream(loop, std::move(lower)));
  if (!cert) {
    s->setup_error_ = absl::InvalidArgumentError("tls: server: no certificate");
    return s;
  }
  s->cert_ = std::move(cert);
  s->ssl_.reset(SSL_new(s->cert_->ctx()));
  if (!s->ssl_) {
    s->setup_error_ = absl::ResourceExhaustedError("tls: server: SSL_new failed");
    return s;
  }
  SSL_set_accept_state(s->ssl_.get());
  s->TrackRecords(already_received);
  s->in_.Append(already_received);
  return s;
}

std::unique_ptr<TlsStream> TlsStream::Client(net::Loop& loop, std::unique_ptr<net::Stream> lower,
                                             const ClientTlsOptions& options) {
  std::unique_ptr<TlsStream> s(new TlsStream(loop, std::move(lower)));
  s->server_name_ = options.server_name;
  auto setup = [&]() -> absl::Status {
    ERR_clear_error();
    s->client_ctx_.reset(SSL_CTX_new(TLS_method()));
    SSL_CTX* ctx = s->client_ctx_.get();
    const uint16_t min_version = options.min_version_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, min_version) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
      return absl::InternalError("tls: client: cannot make a context");
    }
    const bool pinned = !options.spki_sha256.empty();
    if (pinned && options.spki_sha256.size() != SHA256_DIGEST_LENGTH) {
      return absl::InvalidArgumentError(absl::StrCat("tls: client: spki_sha256: ", options.spki_sha256.size(),
                                                     " bytes; a SHA-256 pin is 32"));
    }
    // The chain is checked unless the pin alone authenticates (no CA) or the caller opted out.
    const bool check_chain = !options.insecure_skip_verify && !(pinned && options.ca_pem.empty());
    if (check_chain) {
      if (options.server_name.empty() && !pinned) {
        return absl::InvalidArgumentError("tls: client: server_name is needed to verify the server");
      }
      bssl::UniquePtr<BIO> bio(
          BIO_new_mem_buf(options.ca_pem.data(), static_cast<ptrdiff_t>(options.ca_pem.size())));
      size_t num_roots = 0;
      while (bio) {
        bssl::UniquePtr<X509> root(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!root) break;
        if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), root.get())) {
          return absl::InvalidArgumentError("tls: client: ca_pem: cannot add a certificate");
        }
        ++num_roots;
      }
      ERR_clear_error();
      if (num_roots == 0) return absl::InvalidArgumentError("tls: client: ca_pem: no PEM certificate found");
    }
    if (pinned) {
      s->pin_ = options.spki_sha256;
      s->verify_chain_ = check_chain;
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      // The context is this stream's own, so |s| is the callback's argument.
      SSL_CTX_set_cert_verify_callback(ctx, &TlsStream::VerifyServer, s.get());
    } else {
      SSL_CTX_set_verify(ctx, check_chain ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    }
    if (!options.client_chain_pem.empty() || !options.client_key_pem.empty()) {
      P2P_RETURN_IF_ERROR(UseChainAndKey(ctx, options.client_chain_pem, options.client_key_pem,
                                         "tls: client: client certificate"));
    }
    s->ssl_.reset(SSL_new(ctx));
    SSL* ssl = s->ssl_.get();
    if (!ssl) return absl::ResourceExhaustedError("tls: client: SSL_new failed");
    SSL_set_connect_state(ssl);
    const bool ip = IsIpLiteral(options.server_name);
    // RFC 6066 3: SNI carries host names only, never an address literal.
    if (!options.server_name.empty() && !ip &&
        !SSL_set_tlsext_host_name(ssl, options.server_name.c_str())) {
      return absl::InvalidArgumentError(absl::StrCat("tls: client: bad server_name '", options.server_name, "'"));
    }
    if (check_chain && !options.server_name.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      // BoringSSL matches a wildcard only as a whole leftmost label ("*.example"), never "f*.example".
      const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, options.server_name.c_str())
                        : X509_VERIFY_PARAM_set1_host(param, options.server_name.data(),
                                                      options.server_name.size());
      if (!ok) return absl::InvalidArgumentError(absl::StrCat("tls: client: bad server_name '", options.server_name, "'"));
    }
    if (!options.alpn.empty()) {
      for (const std::string& p : options.alpn) {
        if (p.empty() || p.size() > 255) {
          return absl::InvalidArgumentError(absl::StrCat("tls: client: alpn: '", p, "' is not 1..255 bytes"));
        }
      }
      const std::vector<uint8_t> wire = AlpnWire(options.alpn);
      // SSL_set_alpn_protos returns zero on success.
      if (SSL_set_alpn_protos(ssl, wire.data(), static_cast<unsigned>(wire.size())) != 0) {
        return absl::InvalidArgumentError("tls: client: alpn: rejected");
      }
    }
    return absl::OkStatus();
  };
  s->setup_error_ = setup();
  ERR_clear_error();
  return s;
}

void TlsStream::Handshake(HandshakeCallback done) {
  if (handshake_started_) {
    PostFailure(std::move(done), absl::FailedPreconditionError("tls: Handshake called twice"));
    return;
  }
  handshake_started_ = true;
  if (phase_ == Phase::kClosed) {
    PostFailure(std::move(done), absl::FailedPreconditionError("tls: handshake on a closed stream"));
    return;
  }
  if (!setup_error_.ok()) {
    phase_ = Phase::kFailed;
    lower_->Shutdown();  // the connection is of no further use
    PostFailure(std::move(done), setup_error_);
    return;
  }
  bssl::UniquePtr<BIO> bio(BIO_new(BioMethod()));
  if (!bio) {
    phase_ = Phase::kFailed;
    PostFailure(std::move(done), absl::ResourceExhaustedError("tls: cannot make a BIO"));
    return;
  }
  BIO_set_data(bio.get(), this);
  BIO_set_init(bio.get(), 1);
  BIO* raw = bio.release();
  SSL_set_bio(ssl_.get(), raw, raw);  // one reference, owned by the SSL

  handshake_done_ = std::move(done);
  phase_ = Phase::kHandshaking;
  lower_reading_ = true;
  lower_->SetHandler(this);
  // The first step (the client's ClientHello, the server's look at already_received) runs on a
  // later turn, so |done| never runs inside this call.
  SchedulePump();
}

template <typename F>
bool TlsStream::CallUser(F&& fn) {
  bool destroyed = false;
  bool* const outer = destroyed_;
  destroyed_ = &destroyed;
  fn();
  if (destroyed) {
    if (outer) *outer = true;  // tell every caller up the stack
    return false;
  }
  destroyed_ = outer;
  return true;
}

void TlsStream::SchedulePump() {
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  loop_.Post([alive = alive_] {
    TlsStream* self = *alive;
    if (!self) return;
    self->pump_scheduled_ = false;
    self->Process();
  });
}

void TlsStream::TrackRecords(base::ByteSpan data) {
  size_t i = 0;
  while (i < data.size()) {
    if (record_body_left_ > 0) {
      const size_t skip = std::min(record_body_left_, data.size() - i);
      record_body_left_ -= skip;
      i += skip;
      continue;
    }
    // Header bytes 3 and 4 are the big-endian length.
    if (record_header_have_ == 3) record_len_ = size_t{data[i]} << 8;
    if (record_header_have_ == 4) record_len_ |= data[i];
    ++i;
    if (++record_header_have_ == kRecordHeaderLen) {
      record_header_have_ = 0;
      record_body_left_ = record_len_;
    }
  }
}

bool TlsStream::Process() {
  if (phase_ == Phase::kHandshaking && !StepHandshake()) return false;
  if (phase_ == Phase::kOpen) return Deliver();
  return true;
}

std::string TlsStream::ErrorReason(int ssl_error) {
  std::string reason;
  const uint32_t e = ERR_peek_error();
  if (pin_mismatch_) {
    reason = "server key does not match the pinned SHA-256 (spki_sha256)";
  } else if (e != 0) {
    const char* text = ERR_reason_error_string(e);
    reason = text ? text : absl::StrCat("error ", e);
    const long verify = SSL_get_verify_result(ssl_.get());
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        verify != X509_V_OK) {
      absl::StrAppend(&reason, ": ", X509_verify_cert_error_string(verify));
    }
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    reason = "unexpected end of stream";
  } else {
    reason = absl::StrCat("TLS error ", ssl_error);
  }
  ERR_clear_error();
  return reason;
}

bool TlsStream::StepHandshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_.get());
  FlushCiphertext();  // our next flight, or the alert that ends a failed handshake
  if (rc != 1) {
    const int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ) {
      if (lower_eof_) return FailHandshake("connection closed by peer");
      return true;
    }
    return FailHandshake(ErrorReason(err));
  }
  phase_ = Phase::kOpen;
  UpdateLowerReading();
  // Writes made during the handshake go out first, in order.
  std::vector<PendingWrite> pending;
  pending.swap(pending_);
  pending_bytes_ = 0;
  for (PendingWrite& w : pending) Encrypt(w.data, std::move(w.done));
  if (phase_ == Phase::kOpen && shutdown_) SendCloseNotify();
  HandshakeCallback done = std::move(handshake_done_);
  if (done && !CallUser([&] { done(absl::OkStatus()); })) return false;
  return true;
}

bool TlsStream::FailHandshake(const std::string& reason) {
  phase_ = Phase::kFailed;
  const absl::Status status = absl::UnavailableError(absl::StrCat("tls: handshake: ", reason));
  FailPendingWrites(status);
  lower_reading_ = false;
  lower_->PauseReading();
  lower_->Shutdown();  // after the alert, if any
  // On a later turn: the lower stream first sends the alert, even if |done| destroys us.
  PostFailure(std::move(handshake_done_), status);
  return true;
}

bool TlsStream::Deliver() {
  if (!rx_) rx_.reset(new uint8_t[kRxLen]);
  while (phase_ == Phase::kOpen && handler_ && !paused_ && !end_delivered_) {
    size_t n = 0;
    bool want_read = false;
    int fatal = 0;
    while (n < kRxLen && !peer_closed_) {
      ERR_clear_error();
      const int r = SSL_read(ssl_.get(), rx_.get() + n, static_cast<int>(kRxLen - n));
      if (r > 0) {
        n += static_cast<size_t>(r);
        continue;
      }
      const int err = SSL_get_error(ssl_.get(), r);
      if (err == SSL_ERROR_WANT_READ) {
        want_read = true;
      } else if (err == SSL_ERROR_ZERO_RETURN) {
        peer_closed_ = true;
        in_span_ = {};  // anything after close_notify is ignored
        in_ = ByteQueue();
      } else {
        fatal = err;
      }
      break;
    }
    const absl::Status fatal_status =
        fatal ? absl::UnavailableError(absl::StrCat("tls: ", ErrorReason(fatal))) : absl::OkStatus();
    FlushCiphertext();  // a post-handshake reply (KeyUpdate) or our alert
    if (n > 0 && !CallUser([&] { handler_->OnData(base::ByteSpan(rx_.get(), n)); })) return false;
    if (phase_ != Phase::kOpen || !handler_) return true;  // closed meanwhile
    if (fatal) return Fail(fatal_status);
    if (!peer_closed_ && !(want_read && lower_eof_)) {
      if (want_read) return true;
      continue;  // the buffer filled up: read on
    }
    if (paused_) return true;  // the end is delivered once reading resumes
    if (!peer_closed_ && (record_header_have_ != 0 || record_body_left_ != 0)) {
      return Fail(absl::DataLossError("tls: connection closed inside a record (truncated)"));
    }
    end_delivered_ = true;
    UpdateLowerReading();
    return CallUser([&] { handler_->OnEnd(); });
  }
  return true;
}

bool TlsStream::Fail(const absl::Status& status) {
  if (phase_ == Phase::kFailed || phase_ == Phase::kClosed) return true;
  phase_ = Phase::kFailed;
  FailPendingWrites(status);
  lower_reading_ = false;
  lower_->PauseReading();
  lower_->Shutdown();  // sends our alert, if TLS queued one, then FIN
  net::StreamHandler* h = handler_;
  if (!h) return true;
  return CallUser([&] { h->OnError(status); });
}

void TlsStream::OnData(base::ByteSpan data) {
  if (phase_ != Phase::kHandshaking && phase_ != Phase::kOpen) return;
  if (peer_closed_) return;
  TrackRecords(data);
  in_span_ = data;
  if (!Process()) return;
  // What TLS did not read yet (a partial record, or data held back while paused) is kept.
  if (!in_span_.empty()) in_.Append(in_span_);
  in_span_ = {};
}

void TlsStream::OnEnd() {
  lower_eof_ = true;
  lower_reading_ = false;
  Process();
}

void TlsStream::OnError(const absl::Status& status) {
  if (phase_ == Phase::kHandshaking) {
    FailHandshake(std::string(status.message()));
    return;
  }
  if (phase_ != Phase::kOpen) return;
  // Plaintext already decrypted is not held back: the failure is reported now.
  Fail(status);
}

void TlsStream::OnWriteDrained() {
  if (phase_ != Phase::kOpen || !handler_ || !pending_.empty()) return;
  net::StreamHandler* h = handler_;
  CallUser([&] { h->OnWriteDrained(); });
}

void TlsStream::SetHandler(net::StreamHandler* handler) {
  handler_ = handler;
  UpdateLowerReading();
  if (handler_ && phase_ == Phase::kOpen) SchedulePump();  // data that arrived before
}

void TlsStream::UpdateLowerReading() {
  if (!lower_ || phase_ == Phase::kFailed || phase_ == Phase::kClosed || lower_eof_) return;
  const bool want = phase_ == Phase::kHandshaking ||
                    (phase_ == Phase::kOpen && handler_ && !paused_ && !end_delivered_ && !peer_closed_);
  if (want == lower_reading_) return;
  lower_reading_ = want;
  if (want) {
    lower_->ResumeReading();
  } else {
    lower_->PauseReading();
  }
}

void TlsStream::PostFailure(WriteCallback done, absl::Status status) {
  if (!done) return;
  loop_.Post([done = std::move(done), status = std::move(status)]() mutable { done(status); });
}

void TlsStream::FailPendingWrites(const absl::Status& status) {
  for (PendingWrite& w : pending_) PostFailure(std::move(w.done), status);
  pending_.clear();
  pending_bytes_ = 0;
}

void TlsStream::FlushCiphertext(WriteCallback done) {
  if (out_.empty() && !done) return;
  std::vector<uint8_t> chunk;
  chunk.swap(out_);
  lower_->WriteOwned(std::move(chunk), std::move(done));
}

void TlsStream::Encrypt(base::ByteSpan data, WriteCallback done) {
  const size_t records = data.size() / kMaxPlaintextRecordLen + 1;
  out_.reserve(out_.size() + data.size() + records * kRecordOverhead);
  size_t off = 0;
  while (off < data.size()) {
    const int chunk = static_cast<int>(std::min<size_t>(data.size() - off, INT_MAX / 2));
    ERR_clear_error();
    const int r = SSL_write(ssl_.get(), data.data() + off, chunk);
    if (r <= 0) {
      const absl::Status status =
          absl::UnavailableError(absl::StrCat("tls: write: ", ErrorReason(SSL_get_error(ssl_.get(), r))));
      FlushCiphertext();
      PostFailure(std::move(done), status);
      // Reported on a later turn: we are inside the caller's Write.
      phase_ = Phase::kFailed;
      FailPendingWrites(status);
      lower_reading_ = false;
      lower_->PauseReading();
      lower_->Shutdown();
      if (handler_) {
        loop_.Post([alive = alive_, status] {
          TlsStream* self = *alive;
          if (self && self->handler_) self->handler_->OnError(status);
        });
      }
      return;
    }
    off += static_cast<size_t>(r);
  }
  FlushCiphertext(std::move(done));
}

void TlsStream::Write(base::ByteSpan data, WriteCallback done) {
  if (phase_ == Phase::kOpen && !shutdown_) {
    Encrypt(data, std::move(done));  // no copy: TLS reads the caller's bytes
    return;
  }
  WriteOwned(std::vector<uint8_t>(data.begin(), data.end()), std::move(done));
}

void TlsStream::WriteOwned(std::vector<uint8_t> data, WriteCallback done) {
  if (shutdown_ || phase_ == Phase::kFailed || phase_ == Phase::kClosed) {
    PostFailure(std::move(done), absl::FailedPreconditionError("tls: write after close, shutdown or failure"));
    return;
  }
  if (phase_ != Phase::kOpen) {
    pending_bytes_ += data.size();
    pending_.push_back({std::move(data), std::move(done)});
    return;
  }
  Encrypt(data, std::move(done));
}

size_t TlsStream::WriteQueueSize() const {
  if (phase_ == Phase::kClosed || !lower_) return 0;
  return pending_bytes_ + out_.size() + lower_->WriteQueueSize();
}

void TlsStream::SendCloseNotify() {
  ERR_clear_error();
  SSL_shutdown(ssl_.get());  // 0: close_notify sent, the peer's not yet seen; 1: both
  ERR_clear_error();
  FlushCiphertext();
  lower_->Shutdown();
}

void TlsStream::Shutdown() {
  if (shutdown_ || phase_ == Phase::kClosed) return;
  shutdown_ = true;
  // Before the handshake completes, close_notify follows the queued writes once it has.
  if (phase_ == Phase::kOpen) SendCloseNotify();
}

void TlsStream::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  handler_ = nullptr;
  handshake_done_ = nullptr;
  pending_.clear();  // dropped without callbacks, as the Stream contract says
  pending_bytes_ = 0;
  in_ = ByteQueue();
  out_.clear();
  if (lower_) lower_->Close();
}

void TlsStream::PauseReading() {
  paused_ = true;
  UpdateLowerReading();
}

void TlsStream::ResumeReading() {
  paused_ = false;
  UpdateLowerReading();
  // Records already received (and a pending end of stream) are delivered on a later turn.
  if (phase_ == Phase::kOpen && handler_) SchedulePump();
}

std::string_view TlsStream::alpn() const {
  if (!ssl_) return {};
  const uint8_t* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &len);
  return data ? std::string_view(reinterpret_cast<const char*>(data), len) : std::string_view();
}

std::string_view TlsStream::sni() const {
  if (!cert_) return server_name_;
  if (!ssl_) return {};
  const char* name = SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

std::string_view TlsStream::version() const {
  if (!ssl_ || phase_ != Phase::kOpen) return {};
  return SSL_get_version(ssl_.get());
}

std::vector<uint8_t> TlsStream::PeerCertificateDer() const {
  if (!ssl_) return {};
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(ssl_.get()));
  if (!peer) return {};
  uint8_t* der = nullptr;
  const int len = i2d_X509(peer.get(), &der);
  if (len <= 0) return {};
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string TlsStream::PeerCommonName() const {
  if (!ssl_) return {};
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(ssl_.get()));
  if (!peer) return {};
  X509_NAME* subject = X509_get_subject_name(peer.get());
  const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i < 0) return {};
  uint8_t* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string TlsStream::PeerSerialHex() const {
  if (!ssl_) return {};
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(ssl_.get()));
  if (!peer) return {};
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get_serialNumber(peer.get()), nullptr));
  if (!bn) {
    ERR_clear_error();
    return {};
  }
  char* hex = BN_bn2hex(bn.get());
  if (!hex) return {};
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  // BN_bn2hex prints whole bytes ("0f"); the documented form has no leading zeros.
  const size_t sign = out.empty() || out[0] != '-' ? 0 : 1;
  const size_t first = out.find_first_not_of('0', sign);
  out.erase(sign, first == std::string::npos ? out.size() - sign - 1 : first - sign);
  return out;
}

}  // namespace p2proxy::tls
