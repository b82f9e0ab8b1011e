// server.cc: Server: state dir, control sessions, enrollment, snapshot push, audit intake,
// clients' health reports.
#include "server/server.h"

#include <fcntl.h>
#include <openssl/mem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "control/dialer.h"
#include "crypto/keys.h"
#include "crypto/x25519.h"
#include "nat/stream_frame.h"
#include "server/sqlite_store.h"

namespace p2proxy::server {
namespace {

constexpr size_t kMaxStateFile = 64 * 1024;

std::string StatePath(const ServerConfig& c, const char* name) { return absl::StrCat(c.state_dir, "/", name); }

// WriteNewFile creates |path| with |mode| and writes |data|; it never replaces a file.
absl::Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// ReplaceFile writes |data| to |path| through a temporary file and rename.
absl::Status ReplaceFile(const std::string& path, std::string_view data, mode_t mode) {
  const std::string tmp = absl::StrCat(path, ".new");
  ::unlink(tmp.c_str());
  P2P_RETURN_IF_ERROR(WriteNewFile(tmp, data, mode));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot replace ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadStateFile(const std::string& path, bool secret) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  if (secret && (st.st_mode & 0077) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, " is readable by others (mode ", absl::StrFormat("%04o", st.st_mode & 07777),
                     "); it holds a private key: chmod 600 ", path));
  }
  if (static_cast<size_t>(st.st_size) > kMaxStateFile) return absl::InvalidArgumentError(absl::StrCat(path, " is too large"));
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path));
  return text.str();
}

std::string HostOf(const std::string& host_port) {
  std::string host;
  uint16_t port = 0;
  if (!control::SplitHostPort(host_port, &host, &port).ok()) return host_port;
  return host;
}

wire::ErrorCode CodeFor(StoreError e) {
  switch (e) {
    case StoreError::kTokenUnknown: return wire::ERROR_CODE_TOKEN_UNKNOWN;
    case StoreError::kTokenExpired: return wire::ERROR_CODE_TOKEN_EXPIRED;
    case StoreError::kTokenUsed: return wire::ERROR_CODE_TOKEN_USED;
    case StoreError::kTokenWrongKind: return wire::ERROR_CODE_TOKEN_WRONG_KIND;
    case StoreError::kNameTaken:
    case StoreError::kKeyTaken: return wire::ERROR_CODE_NAME_TAKEN;
    case StoreError::kInvalid: return wire::ERROR_CODE_BAD_FRAME;
    case StoreError::kExhausted: return wire::ERROR_CODE_UNAVAILABLE;
    default: return wire::ERROR_CODE_INTERNAL;
  }
}

std::string Hex(const tls::Sha256Digest& d) { return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(d.data()), d.size())); }

}  // namespace

bool SameCertificateSerial(absl::string_view a, absl::string_view b) {
  auto number = [](absl::string_view hex) {
    const size_t first = hex.find_first_not_of('0');
    return first == absl::string_view::npos ? absl::string_view("0") : hex.substr(first);
  };
  return !a.empty() && !b.empty() && absl::EqualsIgnoreCase(number(a), number(b));
}

// Session is one control connection: an enrollment (no certificate) or a node's session.
class Server::Session final : public control::Connection::Handler {
 public:
  Session(Server& server, std::unique_ptr<control::Connection> conn, control::PeerInfo info)
      : server_(server), conn_(std::move(conn)), info_(std::move(info)) {}

  void OnFrame(wire::Frame frame) override {
    switch (frame.message_case()) {
      case wire::Frame::kEnroll: server_.Enroll(*this, frame.enroll()); break;
      case wire::Frame::kHello: server_.Hello(*this, frame.hello()); break;
      case wire::Frame::kAck:
        if (frame.ack().what_case() == wire::Ack::kSnapshotVersion) {
          status.acked_version = std::max(status.acked_version, frame.ack().snapshot_version());
          status.last_error = frame.ack().error();
          if (frame.ack().error().empty()) {
            ++server_.counters_.snapshots_acked;
          } else {
            ++server_.counters_.snapshots_refused;
            P2P_LOG(kWarn, "server.snapshot_refused")
                .Kv("node", node.id)
                .Kv("version", frame.ack().snapshot_version())
                .Kv("error", frame.ack().error());
          }
          server_.last_status_[node.id] = status;
        }
        break;
      case wire::Frame::kEndpointReport: server_.OnEndpointReport(*this, frame.endpoint_report()); break;
      case wire::Frame::kAuditBatch: server_.OnAuditBatch(*this, frame.audit_batch()); break;
      case wire::Frame::kHealth: server_.OnHealth(*this, frame.health()); break;
      case wire::Frame::kError:
        P2P_LOG(kInfo, "server.node_error").Kv("node", node.id).Kv("remote", info_.remote.ToString())
            .Kv("error", frame.error().message());
        break;
      default: break;
    }
  }
  void OnClosed(const absl::Status& reason) override {
    P2P_LOG(kDebug, "server.session_closed").Kv("node", node.id).Kv("reason", reason.message());
    server_.EndSession(this);
  }

  Server& server_;
  std::unique_ptr<control::Connection> conn_;
  control::PeerInfo info_;
  NodeRecord node;  // set by Hello
  SessionState status;
};

Server::Server(net::Loop& loop, base::Clock& clock, ServerConfig config, tls::CertificateAuthority ca)
    : loop_(loop), clock_(clock), config_(std::move(config)), ca_(std::move(ca)), endpoint_push_(loop), housekeeping_(loop) {}

Server::~Server() {
  housekeeping_.Stop();
  endpoint_push_.Stop();
  tunnel_.reset();
  by_node_.clear();
  sessions_.clear();
  listener_.reset();
  OPENSSL_cleanse(control_key_pem_.data(), control_key_pem_.size());
}

absl::StatusOr<std::string> Server::Init(const ServerConfig& config, absl::Time now) {
  if (config.public_address.empty()) {
    return absl::InvalidArgumentError("--public_address is required: the HOST:PORT nodes dial (e.g. ctl.example.com:443)");
  }
  std::string host;
  uint16_t port = 0;
  if (absl::Status st = control::SplitHostPort(config.public_address, &host, &port); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--public_address: ", st.message()));
  }
  // The ranges nodes accept (control/validate.cc: IPv4, /8 to /30), apart from each other.
  for (const auto& [flag, range] : {std::pair("--node_range", config.node_range), std::pair("--resource_range", config.resource_range)}) {
    if (range.address.family != base::IpAddress::kV4 || range.length < 8 || range.length > 30) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", range.ToString(), " is not an IPv4 range of /8 to /30"));
    }
  }
  if (config.node_range.Contains(config.resource_range.address) || config.resource_range.Contains(config.node_range.address)) {
    return absl::InvalidArgumentError(absl::StrCat("--node_range ", config.node_range.ToString(), " and --resource_range ",
                                                   config.resource_range.ToString(), " overlap: give them separate ranges"));
  }
  if (::mkdir(config.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", config.state_dir, ": ", std::strerror(errno)));
  }
  ::chmod(config.state_dir.c_str(), 0700);
  if (::access(StatePath(config, "ca.pem").c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(config.state_dir, " holds a CA already; init never replaces keys "
                                                 "(start the server, or choose another --state_dir)"));
  }
  P2P_ASSIGN_OR_RETURN(tls::CertificateAuthority ca, tls::CertificateAuthority::Create("p2proxy CA", now));
  P2P_ASSIGN_OR_RETURN(tls::SecretString ca_key, ca.key_pem());
  P2P_ASSIGN_OR_RETURN(tls::KeyPair control_key, tls::KeyPair::GenerateP256());
  P2P_ASSIGN_OR_RETURN(tls::SecretString control_key_pem, control_key.ToPem());
  const std::vector<std::string> names = {host};
  P2P_ASSIGN_OR_RETURN(tls::IssuedCertificate control_cert,
                       ca.IssueServerCertificate(control_key, names, now, absl::Hours(24 * 397)));
  crypto::Key wg;
  crypto::GeneratePrivateKey(&wg);
  std::string wg_text = crypto::KeyToBase64(wg.span());
  absl::Status st = WriteNewFile(StatePath(config, "ca.key"), ca_key.view(), 0600);
  if (st.ok()) st = WriteNewFile(StatePath(config, "control.key"), control_key_pem.view(), 0600);
  if (st.ok()) st = WriteNewFile(StatePath(config, "wireguard.key"), wg_text + "\n", 0600);
  if (st.ok()) st = WriteNewFile(StatePath(config, "control.pem"), control_cert.certificate_pem, 0644);
  if (st.ok()) st = WriteNewFile(StatePath(config, "ca.pem"), ca.certificate_pem(), 0644);  // last: marks init done
  OPENSSL_cleanse(wg_text.data(), wg_text.size());
  P2P_RETURN_IF_ERROR(st);
  SqliteStoreOptions options;
  options.node_range = config.node_range;
  options.resource_range = config.resource_range;
  P2P_ASSIGN_OR_RETURN(auto store, SqliteStore::Open(StatePath(config, "server.db"), options));
  P2P_RETURN_IF_ERROR(store->SetMeta("public_address", config.public_address));
  P2P_RETURN_IF_ERROR(store->SetMeta("node_range", config.node_range.ToString()));
  P2P_RETURN_IF_ERROR(store->SetMeta("resource_range", config.resource_range.ToString()));
  return absl::StrCat("initialized ", config.state_dir, "\n", "  CA: ", StatePath(config, "ca.pem"),
                      " (users trust it once: p2proxy-server admin ca export)\n", "  control pin (sha256 of its key): ",
                      Hex(control_key.spki_sha256()), "\n", "  nodes dial: ", config.public_address, "\n");
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(net::Loop& loop, base::Clock& clock, ServerConfig config) {
  if (::access(StatePath(config, "ca.pem").c_str(), F_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        config.state_dir, " is not initialized: run `p2proxy-server init --state_dir=", config.state_dir,
        " --public_address=HOST:PORT` first"));
  }
  P2P_ASSIGN_OR_RETURN(std::string ca_pem, ReadStateFile(StatePath(config, "ca.pem"), false));
  P2P_ASSIGN_OR_RETURN(std::string ca_key, ReadStateFile(StatePath(config, "ca.key"), true));
  auto ca = tls::CertificateAuthority::Load(ca_pem, ca_key);
  OPENSSL_cleanse(ca_key.data(), ca_key.size());
  if (!ca.ok()) return absl::Status(ca.status().code(), absl::StrCat(StatePath(config, "ca.key"), ": ", ca.status().message()));
  std::unique_ptr<Server> s(new Server(loop, clock, std::move(config), std::move(*ca)));
  const ServerConfig& c = s->config_;
  P2P_ASSIGN_OR_RETURN(std::string control_pem, ReadStateFile(StatePath(c, "control.pem"), false));
  P2P_ASSIGN_OR_RETURN(s->control_key_pem_, ReadStateFile(StatePath(c, "control.key"), true));
  P2P_ASSIGN_OR_RETURN(std::string wg_text, ReadStateFile(StatePath(c, "wireguard.key"), true));
  auto wg = crypto::ParseKey(absl::StripAsciiWhitespace(wg_text));
  OPENSSL_cleanse(wg_text.data(), wg_text.size());
  if (!wg.ok()) return absl::InvalidArgumentError(absl::StrCat(StatePath(c, "wireguard.key"), ": not a WireGuard key"));
  const crypto::PublicKey wg_pub = crypto::PublicFromPrivate(*wg);
  s->settings_.server_wireguard_key.assign(wg_pub.begin(), wg_pub.end());
  s->settings_.zones = c.zones;

  {
    // The ranges chosen at init (a database from before they were kept: the defaults).
    P2P_ASSIGN_OR_RETURN(auto probe, SqliteStore::Open(StatePath(c, "server.db")));
    SqliteStoreOptions options;
    for (const auto& [key, out] : {std::pair("node_range", &options.node_range),
                                   std::pair("resource_range", &options.resource_range)}) {
      auto stored = probe->GetMeta(key);
      if (!stored.ok() || !stored->has_value()) continue;
      auto prefix = base::IpPrefix::Parse(**stored);
      if (!prefix.ok()) {
        return absl::DataLossError(absl::StrCat(StatePath(c, "server.db"), ": ", key, " '", **stored, "' does not parse"));
      }
      *out = *prefix;
    }
    probe.reset();
    s->config_.node_range = options.node_range;
    s->config_.resource_range = options.resource_range;
    const uint32_t server_ip = options.node_range.address.v4() + 1;
    s->settings_.server_node_address = base::IpAddress::V4(static_cast<uint8_t>(server_ip >> 24), static_cast<uint8_t>(server_ip >> 16),
                                                           static_cast<uint8_t>(server_ip >> 8), static_cast<uint8_t>(server_ip))
                                           .ToString();
    s->settings_.node_range = options.node_range.ToString();
    s->settings_.resource_range = options.resource_range.ToString();
    P2P_ASSIGN_OR_RETURN(s->store_, SqliteStore::Open(StatePath(c, "server.db"), options));
  }
  if (c.public_address.empty()) {
    auto stored = s->store_->GetMeta("public_address");
    if (stored.ok() && stored->has_value()) s->config_.public_address = **stored;
  }
  Server* me = s.get();
  if (c.wireguard_listen.valid()) {
    auto self_ip = base::IpAddress::Parse(s->settings_.server_node_address);
    if (!self_ip.ok()) return self_ip.status();
    P2P_ASSIGN_OR_RETURN(s->tunnel_, ServerTunnel::Start(loop, clock, c.wireguard_listen, *wg, *self_ip,
                                                         [me](const std::string& id, const base::SocketAddress& ep) {
                                                           ++me->counters_.endpoints_learned;
                                                           if (nat::IsPseudoEndpoint(ep)) {
                                                             // Over TLS: no UDP endpoint for its peers to punch to.
                                                             P2P_LOG(kInfo, "server.wireguard_heard")
                                                                 .Kv("node", id)
                                                                 .Kv("endpoint", me->tunnel_->TlsRemoteOf(ep).ToString())
                                                                 .Kv("transport", "tls");
                                                             return;
                                                           }
                                                           P2P_LOG(kInfo, "server.wireguard_heard")
                                                               .Kv("node", id)
                                                               .Kv("endpoint", ep.ToString());
                                                           me->SetEndpoint(id, ep.ToString());
                                                         }));
  }
  s->settings_.server_wireguard_endpoint = c.wireguard_endpoint;
  if (c.wireguard_endpoint.empty() && s->tunnel_ != nullptr) {
    std::string host;
    uint16_t port = 0;
    if (control::SplitHostPort(s->config_.public_address, &host, &port).ok()) {
      s->settings_.server_wireguard_endpoint =
          absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", s->tunnel_->port()) : absl::StrCat(host, ":", s->tunnel_->port());
    }
  }
  if (s->tunnel_ != nullptr) (void)s->CurrentDeployment();  // loading it syncs the tunnel's peers

  control::ListenerOptions lopts;
  lopts.address = c.listen;
  lopts.connection = c.connection;
  control::ControlCredentials creds;
  creds.certificate_chain_pem = control_pem;
  creds.private_key_pem = s->control_key_pem_;
  creds.client_ca_pem = s->ca_.certificate_pem();
  Server* self = s.get();
  P2P_ASSIGN_OR_RETURN(s->listener_,
                       control::ControlListener::Listen(loop, lopts, creds,
                                                        [self](std::unique_ptr<control::Connection> conn,
                                                               control::PeerInfo info) {
                                                          self->OnConnection(std::move(conn), std::move(info));
                                                        }));
  if (s->tunnel_ != nullptr) {
    // WireGuard over TLS shares the control port (ALPN p2proxy-wg/1) and its certificate.
    P2P_RETURN_IF_ERROR(s->SetWgTlsCertificate(control_pem));
    P2P_RETURN_IF_ERROR(s->listener_->RegisterAlpn(
        std::string(nat::kWgTlsAlpn),
        [self](std::unique_ptr<net::TcpStream> tcp, std::vector<uint8_t> peeked, const tls::ClientHelloInfo&) {
          self->tunnel_->AcceptWgTls(std::move(tcp), std::move(peeked));
        }));
  }
  OPENSSL_cleanse(creds.private_key_pem.data(), creds.private_key_pem.size());
  absl::Status certs = s->EnsureCertificates();
  if (!certs.ok()) {
    P2P_LOG(kError, "server.certificates").Kv("error", certs.message());
  }
  s->housekeeping_.StartRepeating(absl::Hours(1), [self] { self->Housekeeping(); });
  P2P_LOG(kInfo, "server.up")
      .Kv("listen", s->listener_->local_address().ToString())
      .Kv("wireguard", s->tunnel_ != nullptr ? absl::StrCat(c.wireguard_listen.IpString(), ":", s->tunnel_->port()) : "off")
      .Kv("wireguard_endpoint", s->settings_.server_wireguard_endpoint)
      .Kv("public_address", s->config_.public_address)
      .Kv("pin", s->pin_hex())
      .Kv("version", s->store_->CurrentVersion());
  return s;
}

absl::Status Server::SetWgTlsCertificate(const std::string& certificate_pem) {
  tls::ServerTlsOptions o;
  o.alpn = {std::string(nat::kWgTlsAlpn)};
  o.client_auth = tls::ClientAuth::kRequired;  // enrolled nodes only
  o.client_ca_pem = ca_.certificate_pem();
  o.min_version_tls13 = true;
  auto cert = tls::ServerCertificate::FromPem(certificate_pem, control_key_pem_, o);
  if (!cert.ok()) return absl::InvalidArgumentError(absl::StrCat("wireguard over TLS: credentials: ", cert.status().message()));
  tunnel_->SetWgTlsCertificate(*std::move(cert));
  return absl::OkStatus();
}

std::string Server::pin_hex() const {
  const std::vector<uint8_t>& pin = listener_->spki_sha256();
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(pin.data()), pin.size()));
}

void Server::OnConnection(std::unique_ptr<control::Connection> conn, control::PeerInfo info) {
  control::Connection* raw = conn.get();
  auto session = std::make_unique<Session>(*this, std::move(conn), std::move(info));
  Session* s = session.get();
  if (s->info_.has_client_cert) {
    // A session: the certificate must be the node's current one, and not revoked.
    auto node = store_->GetNode(s->info_.node_id);
    const bool current = node.ok() && SameCertificateSerial(node->certificate_serial, s->info_.cert_serial_hex);
    auto revoked = current ? store_->IsRevoked(node->certificate_serial) : absl::StatusOr<bool>(true);
    const char* refusal = !node.ok()                  ? "unknown node"
                          : node->revoked             ? "the node was revoked"
                          : !current                  ? "not the node's current certificate"
                          : !revoked.ok() || *revoked ? "the certificate was revoked"
                                                      : nullptr;
    if (refusal != nullptr) {
      ++counters_.sessions_refused;
      P2P_LOG(kInfo, "server.session_refused")
          .Kv("node", s->info_.node_id)
          .Kv("remote", s->info_.remote.ToString())
          .Kv("reason", refusal);
      raw->Start(s);
      raw->Close(wire::ERROR_CODE_UNAUTHENTICATED, absl::StrCat("node certificate refused: ", refusal));
      sessions_.emplace(s, std::move(session));
      return;
    }
    s->node = std::move(*node);
  }
  sessions_.emplace(s, std::move(session));
  raw->Start(s);
}

void Server::EndSession(Session* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  if (!session->node.id.empty()) {
    auto b = by_node_.find(session->node.id);
    if (b != by_node_.end() && b->second == session) {
      by_node_.erase(b);
      health_.erase(session->node.id);
      session->status.connected = false;
      last_status_[session->node.id] = session->status;
    }
  }
  // The connection is inside its own callback: delete on a later turn.
  std::shared_ptr<Session> doomed(std::move(it->second));
  sessions_.erase(it);
  loop_.Post([doomed] {});
}

void Server::Enroll(Session& s, const wire::Enroll& enroll) {
  const absl::Time now = clock_.Wall();
  auto csr = tls::ParseCsr(enroll.csr_pem());
  if (!csr.ok()) {
    ++counters_.enroll_refused;
    s.conn_->Close(wire::ERROR_CODE_BAD_FRAME, absl::StrCat("enroll.csr_pem: ", csr.status().message()));
    return;
  }
  EnrollRequest req;
  req.token_hash = HashToken(enroll.token());
  req.kind = enroll.kind();
  req.wireguard_public_key = enroll.wireguard_public_key();
  req.requested_name = enroll.requested_name();
  req.now = now;
  std::string node_cert;
  auto node = store_->EnrollNode(req, [&](const NodeRecord& n) -> absl::StatusOr<std::string> {
    P2P_ASSIGN_OR_RETURN(tls::IssuedCertificate cert,
                         ca_.IssueNodeCertificate(enroll.csr_pem(), n.id, now, config_.node_certificate_validity));
    node_cert = std::move(cert.certificate_pem);
    return cert.serial_hex;
  });
  if (!node.ok()) {
    ++counters_.enroll_refused;
    P2P_LOG(kInfo, "server.enroll_refused")
        .Kv("remote", s.info_.remote.ToString())
        .Kv("kind", enroll.kind() == wire::NODE_KIND_SITE ? "site" : "client")
        .Kv("reason", node.status().message());
    s.conn_->Close(CodeFor(ErrorOf(node.status())), std::string(node.status().message()));
    return;
  }
  ++counters_.enrolled;
  wire::Frame f;
  wire::Enrolled* e = f.mutable_enrolled();
  e->set_node_id(node->id);
  e->set_name(node->name);
  e->set_node_address(node->address);
  e->set_certificate_chain_pem(node_cert);
  e->set_ca_certificate_pem(ca_.certificate_pem());
  const std::vector<uint8_t>& pin = listener_->spki_sha256();
  e->set_server_spki_sha256(std::string(pin.begin(), pin.end()));
  e->set_server_wireguard_public_key(settings_.server_wireguard_key);
  e->set_server_wireguard_endpoint(settings_.server_wireguard_endpoint.empty() ? config_.public_address
                                                                             : settings_.server_wireguard_endpoint);
  e->set_server_node_address(settings_.server_node_address);
  e->set_node_range(settings_.node_range);
  e->set_resource_range(settings_.resource_range);
  absl::Status sent = s.conn_->Send(f);
  P2P_LOG(kInfo, "server.enrolled")
      .Kv("node", node->id)
      .Kv("name", node->name)
      .Kv("kind", node->kind == wire::NODE_KIND_SITE ? "site" : "client")
      .Kv("user", node->user)
      .Kv("address", node->address)
      .Kv("remote", s.info_.remote.ToString())
      .Kv("sent", sent.ok() ? "ok" : std::string(sent.message()));
  Changed();  // other nodes may now be told about this one
}

void Server::Hello(Session& s, const wire::Hello& hello) {
  ++counters_.sessions;
  // One session per node: a newer one replaces the older (the node reconnected).
  auto old = by_node_.find(s.node.id);
  if (old != by_node_.end() && old->second != &s) {
    old->second->conn_->Close(wire::ERROR_CODE_UNAVAILABLE, "replaced by a newer session of the same node");
    by_node_.erase(old);
  }
  by_node_[s.node.id] = &s;
  health_.erase(s.node.id);  // a new session reports afresh
  s.status.connected = true;
  s.status.last_seen = clock_.Wall();
  // The node is sent its snapshot after every Hello, even one it says it has: the answer tells
  // it the session is accepted, and applying it again changes nothing.
  s.status.acked_version = 0;
  s.status.sent_version = 0;
  s.status.remote = s.info_.remote.ToString();
  last_status_[s.node.id] = s.status;
  (void)store_->RecordNodeSeen(s.node.id, s.node.last_endpoint, clock_.Wall());
  P2P_LOG(kInfo, "server.session")
      .Kv("node", s.node.id)
      .Kv("name", s.node.name)
      .Kv("remote", s.info_.remote.ToString())
      .Kv("has_version", hello.last_snapshot_version())
      .Kv("version", store_->CurrentVersion());
  const Deployment* d = CurrentDeployment();
  if (d == nullptr) return;
  Push(s, *d);
}

void Server::Push(Session& s, const Deployment& d) {
  // Nothing to send when the node has this version already or it is on its way.
  if (d.version <= std::max(s.status.sent_version, s.status.acked_version)) return;
  wire::Frame f;
  *f.mutable_snapshot() = s.node.kind == wire::NODE_KIND_SITE ? SiteSnapshot(d, settings_, s.node)
                                                               : ClientSnapshot(d, settings_, s.node);
  absl::Status sent = s.conn_->Send(f);
  // The frame held certificate keys: wipe them from our copy.
  if (f.snapshot().has_site()) {
    for (auto& c : *f.mutable_snapshot()->mutable_site()->mutable_certificates()) {
      OPENSSL_cleanse(c.mutable_private_key_pem()->data(), c.private_key_pem().size());
    }
  }
  if (!sent.ok()) {
    P2P_LOG(kWarn, "server.push_failed").Kv("node", s.node.id).Kv("error", sent.message());
    return;
  }
  ++counters_.snapshots_sent;
  s.status.sent_version = d.version;
  last_status_[s.node.id] = s.status;
}

const Deployment* Server::CurrentDeployment() {
  // Every write that changes a snapshot moves the version on (the store's rule, and the
  // endpoint update here), so one read per version serves every Hello and push: a reconnect
  // storm of N nodes costs one read, not N.
  if (deployment_ && deployment_->version == store_->CurrentVersion()) return &*deployment_;
  auto d = LoadDeployment(*store_);
  if (!d.ok()) {
    P2P_LOG(kError, "server.store").Kv("error", d.status().message());
    deployment_.reset();
    return nullptr;
  }
  deployment_ = std::move(*d);
  if (tunnel_ != nullptr) tunnel_->Sync(*deployment_);
  // Health reports are kept for live sites only: a site revoked or removed drops out of them.
  live_sites_.clear();
  for (const NodeRecord& n : deployment_->sites) live_sites_.insert(n.id);
  for (auto& [client, sites] : health_) {
    for (auto it = sites.begin(); it != sites.end();) {
      it = live_sites_.count(it->first) != 0 ? std::next(it) : sites.erase(it);
    }
  }
  return &*deployment_;
}

void Server::Changed() {
  absl::Status certs = EnsureCertificates();
  if (!certs.ok()) {
    P2P_LOG(kError, "server.certificates").Kv("error", certs.message());
  }
  const Deployment* d = CurrentDeployment();
  if (d == nullptr) return;
  std::vector<Session*> live;
  for (auto& [id, session] : by_node_) live.push_back(session);
  for (Session* session : live) {
    // A node that was revoked or removed since it connected is cut off.
    const bool still = std::any_of(d->sites.begin(), d->sites.end(), [&](const NodeRecord& n) { return n.id == session->node.id; }) ||
                       std::any_of(d->devices.begin(), d->devices.end(), [&](const NodeRecord& n) { return n.id == session->node.id; });
    if (!still) {
      Disconnect(session->node.id);
      continue;
    }
    Push(*session, *d);
  }
}

void Server::Disconnect(absl::string_view node_id_view) {
  const std::string node_id(node_id_view);
  auto it = by_node_.find(node_id);
  if (it == by_node_.end()) return;
  Session* s = it->second;
  by_node_.erase(it);
  health_.erase(node_id);
  s->status.connected = false;
  last_status_[node_id] = s->status;
  s->conn_->Close(wire::ERROR_CODE_UNAUTHENTICATED, "the node was revoked or removed");
}

absl::Status Server::EnsureCertificates() {
  const absl::Time now = clock_.Wall();
  P2P_ASSIGN_OR_RETURN(std::vector<wire::Resource> resources, store_->ListResources());
  absl::Status first;
  for (const auto& r : resources) {
    if (r.kind() != wire::RESOURCE_KIND_HTTPS) continue;
    std::vector<std::string> domains(r.domains().begin(), r.domains().end());
    auto have = store_->GetCertificate(r.name());
    if (have.ok()) {
      auto info = tls::InspectCertificate(have->chain_pem);
      OPENSSL_cleanse(have->key_pem.data(), have->key_pem.size());
      if (info.ok() && info->dns_names == domains && info->not_after - now > config_.renew_before) continue;
    }
    auto issued = ca_.IssueResourceCertificate(domains, now, config_.resource_certificate_validity);
    if (!issued.ok()) {
      if (first.ok()) first = absl::Status(issued.status().code(), absl::StrCat("resource ", r.name(), ": ", issued.status().message()));
      continue;
    }
    CertificateRecord rec;
    rec.resource = r.name();
    rec.chain_pem = issued->chain_pem;
    rec.key_pem = issued->key_pem.str();
    rec.serial = issued->serial_hex;
    rec.not_after = issued->not_after;
    absl::Status put = store_->PutCertificate(rec);
    OPENSSL_cleanse(rec.key_pem.data(), rec.key_pem.size());
    if (!put.ok()) {
      if (first.ok()) first = put;
      continue;
    }
    ++counters_.certificates_issued;
    P2P_LOG(kInfo, "server.certificate_issued")
        .Kv("resource", r.name())
        .Kv("names", absl::StrJoin(domains, ","))
        .Kv("serial", issued->serial_hex)
        .Kv("not_after", absl::FormatTime(absl::RFC3339_sec, issued->not_after, absl::UTCTimeZone()));
  }
  return first;
}

absl::Status Server::RotateResourceCertificates(const std::string& resource) {
  P2P_ASSIGN_OR_RETURN(std::vector<wire::Resource> resources, store_->ListResources());
  bool found = false;
  for (const auto& r : resources) {
    if (r.kind() != wire::RESOURCE_KIND_HTTPS || (!resource.empty() && r.name() != resource)) continue;
    found = true;
    std::vector<std::string> domains(r.domains().begin(), r.domains().end());
    P2P_ASSIGN_OR_RETURN(tls::ResourceCertificate issued,
                         ca_.IssueResourceCertificate(domains, clock_.Wall(), config_.resource_certificate_validity));
    CertificateRecord rec;
    rec.resource = r.name();
    rec.chain_pem = issued.chain_pem;
    rec.key_pem = issued.key_pem.str();
    rec.serial = issued.serial_hex;
    rec.not_after = issued.not_after;
    absl::Status put = store_->PutCertificate(rec);
    OPENSSL_cleanse(rec.key_pem.data(), rec.key_pem.size());
    P2P_RETURN_IF_ERROR(put);
    ++counters_.certificates_issued;
    P2P_LOG(kInfo, "server.certificate_rotated").Kv("resource", r.name()).Kv("serial", issued.serial_hex);
  }
  if (!found) {
    return absl::NotFoundError(resource.empty() ? std::string("no https resource to rotate")
                                                : absl::StrCat("no https resource named '", resource, "'"));
  }
  Changed();
  return absl::OkStatus();
}

absl::Status Server::RotateServerCertificate() {
  P2P_ASSIGN_OR_RETURN(tls::KeyPair key, tls::KeyPair::FromPem(control_key_pem_));
  const std::vector<std::string> names = {HostOf(config_.public_address)};
  P2P_ASSIGN_OR_RETURN(tls::IssuedCertificate cert, ca_.IssueServerCertificate(key, names, clock_.Wall(), absl::Hours(24 * 397)));
  control::ControlCredentials creds;
  creds.certificate_chain_pem = cert.certificate_pem;
  creds.private_key_pem = control_key_pem_;
  creds.client_ca_pem = ca_.certificate_pem();
  absl::Status set = listener_->SetCredentials(creds);
  OPENSSL_cleanse(creds.private_key_pem.data(), creds.private_key_pem.size());
  P2P_RETURN_IF_ERROR(set);
  if (tunnel_ != nullptr) P2P_RETURN_IF_ERROR(SetWgTlsCertificate(cert.certificate_pem));
  P2P_RETURN_IF_ERROR(ReplaceFile(StatePath(config_, "control.pem"), cert.certificate_pem, 0644));
  P2P_LOG(kInfo, "server.control_certificate_rotated").Kv("serial", cert.serial_hex).Kv("pin", pin_hex());
  return absl::OkStatus();
}

void Server::OnEndpointReport(Session& s, const wire::EndpointReport& report) {
  // The server's own WireGuard interface sees where a node really is (through its NAT); what
  // the node reports is used only when that is off or has not heard the node: the source
  // address of its control connection with the port of its first reported endpoint, right
  // where nothing translates the node's address.
  if (report.endpoints().empty() || s.node.kind != wire::NODE_KIND_SITE) return;
  if (tunnel_ != nullptr && tunnel_->EndpointOf(s.node.id) != nullptr) return;
  std::string host;
  uint16_t port = 0;
  if (!control::SplitHostPort(report.endpoints(0), &host, &port).ok()) return;
  const std::string remote_ip = s.info_.remote.IpString();
  const std::string endpoint = s.info_.remote.family() == AF_INET6 ? absl::StrCat("[", remote_ip, "]:", port)
                                                                     : absl::StrCat(remote_ip, ":", port);
  SetEndpoint(s.node.id, endpoint);
}

void Server::SetEndpoint(const std::string& id, const std::string& endpoint) {
  const Deployment* d = CurrentDeployment();
  if (d == nullptr) return;
  const NodeRecord* node = nullptr;
  for (const auto* list : {&d->sites, &d->devices}) {
    for (const NodeRecord& n : *list) {
      if (n.id == id) node = &n;
    }
  }
  if (node == nullptr) return;
  auto session = by_node_.find(id);
  if (session != by_node_.end()) session->second->node.last_endpoint = endpoint;
  if (node->last_endpoint == endpoint) return;
  (void)store_->RecordNodeSeen(id, endpoint, clock_.Wall());
  P2P_LOG(kInfo, "server.endpoint").Kv("node", id).Kv("endpoint", endpoint);
  // Clients must learn a site's endpoint, and sites a device's (for hole punching): their
  // snapshots change, so the version moves on, once for every change heard in this loop turn.
  if (!endpoint_push_.active()) {
    endpoint_push_.Start(absl::ZeroDuration(), [this] {
      if (store_->BumpVersion().ok()) Changed();
    });
  }
}

void Server::OnAuditBatch(Session& s, const wire::AuditBatch& batch) {
  if (s.node.kind != wire::NODE_KIND_SITE) {
    s.conn_->Close(wire::ERROR_CODE_BAD_FRAME, "only sites send audit batches");
    return;
  }
  auto added = store_->AppendAuditBatch(s.node.id, batch, clock_.Wall());
  if (!added.ok()) {
    // Not acknowledged: the site keeps the batch and sends it again later.
    P2P_LOG(kError, "server.audit_store").Kv("node", s.node.id).Kv("sequence", batch.sequence()).Kv("error", added.status().message());
    return;
  }
  ++counters_.audit_batches;
  if (*added) {
    counters_.audit_events += static_cast<uint64_t>(batch.events_size());
  } else {
    ++counters_.audit_duplicates;
  }
  wire::Frame f;
  f.mutable_ack()->set_audit_batch(batch.sequence());
  (void)s.conn_->Send(f);
}

void Server::OnHealth(Session& s, const wire::Health& health) {
  // ValidateFrame has checked the sizes and ids (at most kMaxHealthSites, each site once, rtt
  // at most kMaxRttMicros); who sends it and which sites it names need the server's context.
  if (s.node.kind != wire::NODE_KIND_CLIENT) {
    ++counters_.health_refused;
    P2P_LOG(kWarn, "server.health_refused").Kv("node", s.node.id).Kv("remote", s.info_.remote.ToString());
    s.conn_->Close(wire::ERROR_CODE_BAD_FRAME, "only clients send health");
    return;
  }
  auto live = by_node_.find(s.node.id);
  if (live == by_node_.end() || live->second != &s) return;  // a replaced session's last words
  if (CurrentDeployment() == nullptr) return;  // the store failed (logged); keep what we had
  ++counters_.health_reports;
  // A report is the client's whole view: sites it no longer lists are forgotten.
  auto& mine = health_[s.node.id];
  mine.clear();
  const absl::Time now = clock_.Wall();
  uint64_t unknown = 0;
  for (const wire::SiteHealth& e : health.sites()) {
    // A site the client still probes from an older snapshot, or one that never existed.
    if (live_sites_.count(e.site_id()) == 0) {
      ++unknown;
      continue;
    }
    mine[e.site_id()] = HealthEntry{e.up(), e.rtt_micros(), now};
  }
  if (unknown > 0) {
    counters_.health_unknown_sites += unknown;
    P2P_LOG(kDebug, "server.health_unknown_sites").Kv("node", s.node.id).Kv("ignored", unknown);
  }
}

std::vector<SiteHealthReport> Server::HealthReports() {
  std::vector<SiteHealthReport> out;
  for (const auto& [client, sites] : health_) {
    for (const auto& [site, e] : sites) {
      SiteHealthReport r;
      r.site_id = site;
      r.client_id = client;
      r.up = e.up;
      r.rtt_micros = e.rtt_micros;
      r.received = e.received;
      out.push_back(std::move(r));
    }
  }
  return out;
}

void Server::Housekeeping() {
  absl::Status certs = EnsureCertificates();
  if (!certs.ok()) {
    P2P_LOG(kError, "server.certificates").Kv("error", certs.message());
  }
  auto pruned = store_->PruneAudit(clock_.Wall() - config_.audit_retention);
  if (pruned.ok() && *pruned > 0) {
    P2P_LOG(kInfo, "server.audit_pruned").Kv("events", *pruned);
  }
  Changed();
}

std::vector<NodeLiveStatus> Server::LiveStatus() {
  std::vector<NodeLiveStatus> out;
  for (const auto& [id, st] : last_status_) {
    NodeLiveStatus n;
    n.node_id = id;
    n.connected = st.connected;
    n.acked_version = st.acked_version;
    // Where its WireGuard is heard from (through its NAT), else its stored endpoint (admin.cc).
    const base::SocketAddress* wg = tunnel_ != nullptr ? tunnel_->EndpointOf(id) : nullptr;
    if (wg != nullptr && nat::IsPseudoEndpoint(*wg)) {
      n.over_tls = true;
      const base::SocketAddress remote = tunnel_->TlsRemoteOf(*wg);
      n.endpoint = remote.valid() ? absl::StrCat("tls ", remote.ToString()) : "tls (closed)";
    } else if (wg != nullptr) {
      n.endpoint = wg->ToString();
    }
    n.last_seen = st.last_seen;
    if (tunnel_ != nullptr) {
      const Relay::NodeTraffic t = tunnel_->RelayTrafficOf(id);
      n.relayed_frames = t.frames_from + t.frames_to;
      n.relayed_now = n.relayed_frames > 0 && clock_.Monotonic() - t.last < absl::Seconds(30);
    }
    out.push_back(std::move(n));
  }
  return out;
}

absl::Status Server::RotateCertificates(const CertRotation& what) {
  switch (what.what) {
    case CertRotation::What::kServer: return RotateServerCertificate();
    case CertRotation::What::kResource: return RotateResourceCertificates(what.resource);
    case CertRotation::What::kAllResources: return RotateResourceCertificates("");
  }
  return absl::InvalidArgumentError("cert rotate: nothing to rotate");
}

}  // namespace p2proxy::server
