// tls_stream.h: TLS (BoringSSL) over any net::Stream, itself a net::Stream, for both sides of a
// connection: a server fed the bytes a ClientHello peek already took, and a verifying client.
#ifndef P2PROXY_TLS_TLS_STREAM_H_
#define P2PROXY_TLS_TLS_STREAM_H_

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "base/bytes.h"
#include "net/loop.h"
#include "net/stream.h"
#include "tls/cert_store.h"

namespace p2proxy::tls {

// ClientTlsOptions configures TlsStream::Client.
//
// How the server is authenticated:
// - ca_pem, no pin: the chain must verify against ca_pem and name server_name (the web way).
// - spki_sha256 alone (ca_pem empty): the server's leaf key must hash to the pin; no chain or
//   name check, since the pin names the one key we accept (how a node enrolls: the pin comes
//   from the enrollment token). server_name is then only sent as SNI, and may be empty.
// - spki_sha256 and ca_pem: both the pin and the chain; the name is checked only if
//   server_name is set (the control channel after enrollment: the CA from Enrolled, the pin
//   as well, so a certificate the CA issued to another name or node cannot pass for the
//   server, and a renewed server certificate with the same key still does).
// - insecure_skip_verify: nothing but the pin, if one is set.
struct ClientTlsOptions {
  // server_name is sent as SNI (unless it is an IP literal) and checked against the server's
  // certificate (dNSName, or iPAddress for a literal). Required when ca_pem is the only
  // authentication (no pin, not insecure_skip_verify).
  std::string server_name;
  // alpn lists the protocols to offer, most preferred first; empty offers none.
  std::vector<std::string> alpn;
  // ca_pem holds the trusted root certificate(s), PEM. Required unless spki_sha256 is set or
  // insecure_skip_verify.
  std::string ca_pem;
  // spki_sha256 pins the server's key: SHA-256 of its leaf's DER SubjectPublicKeyInfo
  // (tls::SpkiSha256), 32 bytes; empty for no pin. A mismatch fails the handshake with
  // "tls: handshake: server key does not match the pinned SHA-256".
  std::vector<uint8_t> spki_sha256;
  // client_chain_pem, client_key_pem: a certificate chain (leaf first) and its private key to
  // present when the server asks (mutual TLS). Both or neither. The key is a secret: it is
  // never put into an error.
  std::string client_chain_pem;
  std::string client_key_pem;
  // min_version_tls13 refuses a server that offers only TLS 1.2.
  bool min_version_tls13 = false;
  // insecure_skip_verify accepts any certificate: tests and explicit opt-in only.
  bool insecure_skip_verify = false;
};

// TlsStream runs TLS 1.2/1.3 over a lower Stream it owns. Ciphertext goes through a BIO whose
// storage is this object's own buffers (not BIO_s_mem, which moves the rest of its buffer
// down on every read): incoming ciphertext is read straight from the lower stream's OnData span
// and only an incomplete record's tail is copied aside; outgoing ciphertext of one Write (up to
// 16 KiB per record) is handed to the lower stream as one write.
//
// Use: make it with Server() or Client(), call Handshake(), and once that reports OK, inspect
// alpn()/sni()/version() and call SetHandler(). Application data that arrives before
// SetHandler waits (as ciphertext, with the lower stream paused) and is delivered after it.
// Writes made before the handshake completes are queued and sent once it has.
//
// Lifetime: destroying the stream closes it at once (no callback follows) and closes the
// lower stream, which is deleted on a later turn of the loop, so a handler may destroy a
// TlsStream inside any of its callbacks, including the Handshake completion; the loop must
// outlive the stream. Write completions are passed to the lower stream and run from there.
class TlsStream final : public net::Stream, private net::StreamHandler {
 public:
  using HandshakeCallback = absl::AnyInvocable<void(const absl::Status&)>;

  // Server makes the server side with |cert|, which the stream keeps alive. |already_received|
  // is what was read from |lower| before (the ClientHello peek's bytes); TLS reads it first.
  // Call Handshake() before returning to the loop: until then |lower| keeps its old handler. A
  // null |cert| is reported by Handshake().
  static std::unique_ptr<TlsStream> Server(net::Loop& loop, std::unique_ptr<net::Stream> lower,
                                           std::shared_ptr<const ServerCertificate> cert,
                                           std::vector<uint8_t> already_received = {});
  // Client makes the client side. Bad options (an unparsable CA, a missing server_name) are
  // reported by Handshake().
  static std::unique_ptr<TlsStream> Client(net::Loop& loop, std::unique_ptr<net::Stream> lower,
                                           const ClientTlsOptions& options);
  ~TlsStream() override;

  // Handshake starts reading |lower| and runs the handshake; |done| runs once, on a later turn
  // or from a lower-stream callback, with OK or the failure ("tls: handshake: <reason>"): a bad
  // certificate, an alert from the peer, bytes that are not TLS, the peer closing. After a
  // failure the stream is dead: destroy it. Calling Handshake twice fails the second |done|.
  void Handshake(HandshakeCallback done);

  // alpn, sni, version describe the connection once Handshake reported OK: the negotiated ALPN
  // protocol ("" if none); the server name (the one the client sent, on the server; the one
  // configured, on the client); the version ("TLSv1.3" or "TLSv1.2", "" before the handshake).
  // The views stay valid while the stream lives.
  std::string_view alpn() const;
  std::string_view sni() const;
  std::string_view version() const;
  // PeerCertificateDer is the peer's leaf certificate in DER, empty if it sent none. On a
  // server with client_auth (ServerTlsOptions), a certificate here has been verified.
  std::vector<uint8_t> PeerCertificateDer() const;
  // PeerCommonName is the peer leaf's subject commonName (UTF-8), empty if no certificate or
  // no CN. PeerSerialHex is its serial number in lower-case hex without leading zeros ("1f"),
  // "-" first if negative; empty if no certificate.
  std::string PeerCommonName() const;
  std::string PeerSerialHex() const;

  // net::Stream. WriteQueueSize counts plaintext waiting for the handshake plus the lower
  // stream's queue of ciphertext, so a writer's backpressure reaches the socket. Shutdown sends
  // close_notify after the queued writes, then shuts the lower stream down; reading goes on.
  // The peer's close_notify, or the lower stream's end on a record boundary, is OnEnd; an end
  // inside a record is OnError (truncation).
  void SetHandler(net::StreamHandler* handler) override;
  void Write(base::ByteSpan data, WriteCallback done = nullptr) override;
  void WriteOwned(std::vector<uint8_t> data, WriteCallback done = nullptr) override;
  size_t WriteQueueSize() const override;
  void Shutdown() override;
  void Close() override;
  void PauseReading() override;
  void ResumeReading() override;

 private:
  enum class Phase { kIdle, kHandshaking, kOpen, kFailed, kClosed };

  // ByteQueue holds ciphertext BoringSSL has not read yet. The front is consumed by moving an
  // offset; the vector is compacted only when the consumed front is at least half of it, so
  // each byte moves at most once on average.
  class ByteQueue {
   public:
    size_t size() const { return buf_.size() - start_; }
    bool empty() const { return size() == 0; }
    const uint8_t* data() const { return buf_.data() + start_; }
    void Append(base::ByteSpan data);
    void Consume(size_t n);

   private:
    std::vector<uint8_t> buf_;
    size_t start_ = 0;
  };

  struct PendingWrite {
    std::vector<uint8_t> data;
    WriteCallback done;
  };

  TlsStream(net::Loop& loop, std::unique_ptr<net::Stream> lower);

  // net::StreamHandler, for |lower_|.
  void OnData(base::ByteSpan data) override;
  void OnEnd() override;
  void OnError(const absl::Status& status) override;
  void OnWriteDrained() override;

  // Each of these returns false if |this| was destroyed by a callback it ran.
  bool Process();
  bool StepHandshake();
  bool Deliver();
  bool FailHandshake(const std::string& reason);
  bool Fail(const absl::Status& status);
  // CallUser runs |fn| (a handler or completion callback) under the destroyed guard.
  template <typename F>
  bool CallUser(F&& fn);

  void Encrypt(base::ByteSpan data, WriteCallback done);
  void SendCloseNotify();
  void FlushCiphertext(WriteCallback done = nullptr);
  void FailPendingWrites(const absl::Status& status);
  void PostFailure(WriteCallback done, absl::Status status);
  void UpdateLowerReading();
  void SchedulePump();
  void TrackRecords(base::ByteSpan data);
  std::string ErrorReason(int ssl_error);

  // The BIO between BoringSSL and this object's buffers.
  static const BIO_METHOD* BioMethod();
  static int BioRead(BIO* bio, char* out, int len);
  static int BioWrite(BIO* bio, const char* in, int len);
  static long BioCtrl(BIO* bio, int cmd, long num, void* ptr);
  // VerifyServer replaces X509_verify_cert on a client with a pin: the pin, then the chain if
  // verify_chain_.
  static int VerifyServer(X509_STORE_CTX* store_ctx, void* arg);
  size_t ReadCiphertext(uint8_t* out, size_t len);

  net::Loop& loop_;
  std::unique_ptr<net::Stream> lower_;
  std::shared_ptr<const ServerCertificate> cert_;  // server: keeps the SSL_CTX's ALPN data alive
  bssl::UniquePtr<SSL_CTX> client_ctx_;
  bssl::UniquePtr<SSL> ssl_;
  absl::Status setup_error_;  // a bad ClientTlsOptions, reported by Handshake()
  std::string server_name_;   // client: the configured name
  std::vector<uint8_t> pin_;  // client: the pinned SPKI SHA-256, or empty
  bool verify_chain_ = false;  // client with a pin: also verify the chain against ca_pem
  bool pin_mismatch_ = false;  // the handshake failed on the pin
  HandshakeCallback handshake_done_;
  net::StreamHandler* handler_ = nullptr;
  Phase phase_ = Phase::kIdle;
  bool handshake_started_ = false;
  bool paused_ = false;
  bool lower_reading_ = false;  // whether we last told |lower_| to read
  bool lower_eof_ = false;
  bool peer_closed_ = false;    // close_notify received
  bool end_delivered_ = false;
  bool shutdown_ = false;
  bool pump_scheduled_ = false;
  bool* destroyed_ = nullptr;  // set while a user callback runs; see CallUser

  ByteQueue in_;                // ciphertext from earlier OnData calls, not yet read by TLS
  base::ByteSpan in_span_;      // ciphertext of the OnData call in progress, not yet read
  size_t record_header_have_ = 0;  // record tracking, to tell a clean end from truncation
  size_t record_len_ = 0;
  size_t record_body_left_ = 0;
  std::vector<uint8_t> out_;    // ciphertext written by TLS, not yet given to |lower_|
  std::vector<PendingWrite> pending_;  // plaintext written before the handshake completed
  size_t pending_bytes_ = 0;
  std::unique_ptr<uint8_t[]> rx_;      // decrypted plaintext, reused for every delivery
  // alive_ is shared with posted tasks and cleared by the destructor.
  std::shared_ptr<TlsStream*> alive_;
};

}  // namespace p2proxy::tls

#endif  // P2PROXY_TLS_TLS_STREAM_H_
