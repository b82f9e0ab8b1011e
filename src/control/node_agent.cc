// node_agent.cc: NodeAgent: state dir, enrollment, session, snapshots, audit spool, health.
#include "control/node_agent.h"

#include <dirent.h>
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
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "control/validate.h"
#include "crypto/keys.h"
#include "crypto/x25519.h"
#include "nat/stream_frame.h"
#include "tls/pki.h"

namespace p2proxy::control {
namespace {

constexpr size_t kMaxStateFile = 4 << 20;  // a snapshot of a large site

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data) {
  const std::string tmp = absl::StrCat(path, ".new");
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(err)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot sync ", tmp, ": ", std::strerror(errno)));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot replace ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  if ((st.st_mode & 0077) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, " is open to other users (mode ",
                                                    absl::StrFormat("%04o", st.st_mode & 07777), "): chmod 600 ", path));
  }
  if (static_cast<size_t>(st.st_size) > kMaxStateFile) return absl::InvalidArgumentError(absl::StrCat(path, " is too large"));
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path));
  return text.str();
}

std::string SpoolName(uint64_t sequence) { return absl::StrFormat("%020u.pb", sequence); }

// Stripped: the snapshot as it may be kept on disk: no certificate keys (invariant I6), and so
// no https resource (it cannot be served without its key until the server pushes it again).
wire::Snapshot Stripped(const wire::Snapshot& s) {
  wire::Snapshot out = s;
  if (out.has_site()) {
    out.mutable_site()->clear_certificates();
    auto* resources = out.mutable_resources();
    resources->erase(std::remove_if(resources->begin(), resources->end(),
                                    [](const wire::Resource& r) { return r.kind() == wire::RESOURCE_KIND_HTTPS; }),
                     resources->end());
  }
  return out;
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

absl::Status ParseEnrollmentToken(absl::string_view token, std::string* secret_out, std::string* pin_out) {
  token = absl::StripAsciiWhitespace(token);
  constexpr absl::string_view kPrefix = "p2p1_";
  const bool shaped = token.size() == kPrefix.size() + 64 + 1 + 64 && absl::StartsWith(token, kPrefix) &&
                      token[kPrefix.size() + 64] == '_' && IsHex64(token.substr(kPrefix.size(), 64)) &&
                      IsHex64(token.substr(kPrefix.size() + 65));
  if (!shaped) {
    return absl::InvalidArgumentError(
        "the token is not an enrollment token (p2p1_ then 64 and 64 lower-case hex digits, as "
        "`p2proxy-server admin token create` prints it)");
  }
  *secret_out = absl::HexStringToBytes(token.substr(kPrefix.size(), 64));
  *pin_out = absl::HexStringToBytes(token.substr(kPrefix.size() + 65));
  return absl::OkStatus();
}

// Session forwards a control connection's events to the agent.
class NodeAgent::Session final : public Connection::Handler {
 public:
  explicit Session(NodeAgent& agent) : agent_(agent) {}
  void OnFrame(wire::Frame frame) override { agent_.OnSessionFrame(std::move(frame)); }
  void OnClosed(const absl::Status& reason) override { agent_.OnSessionClosed(reason); }

 private:
  NodeAgent& agent_;
};

// Enrollment is one enrollment attempt; it owns the agent until the server answered.
class Enrollment final : public Connection::Handler {
 public:
  Enrollment(net::Loop& loop, std::unique_ptr<NodeAgent> agent, NodeAgent::OpenCallback done)
      : loop_(loop), agent_(std::move(agent)), done_(std::move(done)) {}

  static void Start(net::Loop& loop, std::unique_ptr<NodeAgent> agent, const NodeAgentOptions& options,
                    NodeAgent::OpenCallback done);

  void OnFrame(wire::Frame frame) override {
    if (frame.has_enrolled()) {
      Finish(Save(frame.enrolled()));
    } else if (frame.has_error()) {
      Finish(absl::PermissionDeniedError(
          absl::StrCat("enrollment refused by the server: ", frame.error().message())));
    }
  }
  void OnClosed(const absl::Status& reason) override {
    Finish(absl::UnavailableError(absl::StrCat("enrollment: the server closed the connection before answering (",
                                               reason.message(), ")")));
  }

 private:
  absl::Status Save(const wire::Enrolled& enrolled);
  void Finish(absl::Status status) {
    if (finished_) return;
    finished_ = true;
    OPENSSL_cleanse(tls_pem_.data(), tls_pem_.size());
    absl::StatusOr<std::unique_ptr<NodeAgent>> result =
        status.ok() ? absl::StatusOr<std::unique_ptr<NodeAgent>>(std::move(agent_)) : status;
    if (status.ok()) {
      absl::Status loaded = (*result)->Load();
      if (!loaded.ok()) result = loaded;
    }
    // This object may be inside its connection's callback: finish on a later turn.
    loop_.Post([self = this, result = std::move(result)]() mutable {
      auto done = std::move(self->done_);
      delete self;
      done(std::move(result));
    });
  }

  net::Loop& loop_;
  std::unique_ptr<NodeAgent> agent_;
  NodeAgent::OpenCallback done_;
  std::unique_ptr<DialAttempt> dial_;
  std::unique_ptr<Connection> conn_;
  crypto::Key wg_;
  std::string tls_pem_;
  std::string state_dir_;
  std::string server_;
  bool finished_ = false;
};

void Enrollment::Start(net::Loop& loop, std::unique_ptr<NodeAgent> agent, const NodeAgentOptions& options,
                       NodeAgent::OpenCallback done) {
  std::string secret, pin;
  absl::Status parsed = ParseEnrollmentToken(options.token, &secret, &pin);
  OPENSSL_cleanse(secret.data(), secret.size());
  if (!parsed.ok()) {
    loop.Post([done = std::move(done), parsed]() mutable { done(absl::Status(parsed.code(), absl::StrCat("--token: ", parsed.message()))); });
    return;
  }
  auto* e = new Enrollment(loop, std::move(agent), std::move(done));
  e->state_dir_ = options.state_dir;
  e->server_ = options.server;
  crypto::GeneratePrivateKey(&e->wg_);
  auto key = tls::KeyPair::GenerateP256();
  absl::StatusOr<std::string> csr = key.ok() ? tls::MakeCsrPem(*key, options.requested_name.empty() ? "node" : options.requested_name)
                                             : absl::StatusOr<std::string>(key.status());
  if (!csr.ok()) {
    e->Finish(csr.status());
    return;
  }
  auto pem = key->ToPem();
  if (!pem.ok()) {
    e->Finish(pem.status());
    return;
  }
  e->tls_pem_ = pem->str();
  const crypto::PublicKey wg_pub = crypto::PublicFromPrivate(e->wg_);
  wire::Frame enroll;
  enroll.mutable_enroll()->set_token(std::string(absl::StripAsciiWhitespace(options.token)));
  enroll.mutable_enroll()->set_wireguard_public_key(std::string(wg_pub.begin(), wg_pub.end()));
  enroll.mutable_enroll()->set_kind(options.kind);
  enroll.mutable_enroll()->set_requested_name(options.requested_name);
  enroll.mutable_enroll()->set_csr_pem(*csr);

  DialOptions dopts;
  dopts.spki_sha256.assign(pin.begin(), pin.end());
  dopts.connection = options.connection;
  dopts.connection.role = Role::kNode;
  dopts.connection.node_has_certificate = false;
  e->dial_ = DialControl(loop, options.server, std::move(dopts),
                         [e, enroll = std::move(enroll)](absl::StatusOr<std::unique_ptr<Connection>> conn) mutable {
                           if (!conn.ok()) {
                             e->Finish(absl::Status(conn.status().code(), absl::StrCat("enrollment: ", conn.status().message())));
                             return;
                           }
                           e->conn_ = std::move(*conn);
                           e->conn_->Start(e);
                           absl::Status sent = e->conn_->Send(enroll);
                           WipeFrameSecrets(&enroll);
                           if (!sent.ok()) e->Finish(sent);
                         });
}

absl::Status Enrollment::Save(const wire::Enrolled& enrolled) {
  std::string wg_text = absl::StrCat(crypto::KeyToBase64(wg_.span()), "\n");
  absl::Status st = WriteFileAtomic(absl::StrCat(state_dir_, "/wireguard.key"), wg_text);
  OPENSSL_cleanse(wg_text.data(), wg_text.size());
  if (st.ok()) st = WriteFileAtomic(absl::StrCat(state_dir_, "/tls.key"), tls_pem_);
  if (st.ok()) st = WriteFileAtomic(absl::StrCat(state_dir_, "/server"), absl::StrCat(server_, "\n"));
  // enrolled.pb last: its presence marks the enrollment done.
  if (st.ok()) st = WriteFileAtomic(absl::StrCat(state_dir_, "/enrolled.pb"), enrolled.SerializeAsString());
  if (st.ok()) {
    P2P_LOG(kInfo, "node.enrolled")
        .Kv("node", enrolled.node_id())
        .Kv("name", enrolled.name())
        .Kv("address", enrolled.node_address())
        .Kv("state_dir", state_dir_);
  }
  return st;
}

NodeAgent::NodeAgent(net::Loop& loop, NodeAgentOptions options)
    : loop_(loop), options_(std::move(options)), backoff_(options_.backoff), redial_(loop), audit_timer_(loop),
      health_timer_(loop), alive_(std::make_shared<bool>(true)) {}

NodeAgent::~NodeAgent() {
  *alive_ = false;
  // Events still in memory go to the spool so a restart sends them.
  FlushAudit();
  dial_.reset();
  conn_.reset();
  OPENSSL_cleanse(tls_key_pem_.data(), tls_key_pem_.size());
}

std::string NodeAgent::StatePath(absl::string_view name) const { return absl::StrCat(options_.state_dir, "/", name); }

void NodeAgent::Open(net::Loop& loop, NodeAgentOptions options, OpenCallback done) {
  if (options.state_dir.empty()) {
    loop.Post([done = std::move(done)]() mutable { done(absl::InvalidArgumentError("--state_dir is required")); });
    return;
  }
  if (::mkdir(options.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    const std::string why = absl::StrCat("--state_dir: cannot create ", options.state_dir, ": ", std::strerror(errno));
    loop.Post([done = std::move(done), why]() mutable { done(absl::InternalError(why)); });
    return;
  }
  ::chmod(options.state_dir.c_str(), 0700);
  ::mkdir(absl::StrCat(options.state_dir, "/audit").c_str(), 0700);
  std::unique_ptr<NodeAgent> agent(new NodeAgent(loop, options));
  if (::access(agent->StatePath("enrolled.pb").c_str(), F_OK) == 0) {
    absl::Status st = agent->Load();
    absl::StatusOr<std::unique_ptr<NodeAgent>> result =
        st.ok() ? absl::StatusOr<std::unique_ptr<NodeAgent>>(std::move(agent)) : st;
    loop.Post([done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
    return;
  }
  if (options.token.empty() || options.server.empty()) {
    loop.Post([done = std::move(done), dir = options.state_dir]() mutable {
      done(absl::FailedPreconditionError(absl::StrCat(
          dir, " holds no enrollment: give --server HOST:PORT and --token TOKEN once (a token from "
               "`p2proxy-server admin token create`)")));
    });
    return;
  }
  Enrollment::Start(loop, std::move(agent), options, std::move(done));
}

absl::StatusOr<std::unique_ptr<NodeAgent>> NodeAgent::OpenAndWait(net::Loop& loop, NodeAgentOptions options,
                                                                   absl::Duration limit) {
  absl::StatusOr<std::unique_ptr<NodeAgent>> result = absl::DeadlineExceededError(absl::StrCat(
      "enrollment: no answer from the server within ", absl::FormatDuration(limit),
      " (is --server right and reachable?)"));
  bool done = false;
  Open(loop, std::move(options), [&](absl::StatusOr<std::unique_ptr<NodeAgent>> r) {
    result = std::move(r);
    done = true;
  });
  loop.RunUntil([&] { return done; }, limit);
  return result;
}

absl::StatusOr<std::string> NodeAgent::ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return absl::NotFoundError(absl::StrCat("--token_file: cannot read ", path));
  return std::string(absl::StripAsciiWhitespace(line));
}

absl::Status NodeAgent::Load() {
  P2P_ASSIGN_OR_RETURN(std::string enrolled, ReadFile(StatePath("enrolled.pb")));
  if (!enrolled_.ParseFromString(enrolled)) return absl::InvalidArgumentError(absl::StrCat(StatePath("enrolled.pb"), ": damaged"));
  wire::Frame check;
  *check.mutable_enrolled() = enrolled_;
  if (absl::Status st = ValidateFrame(check); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(StatePath("enrolled.pb"), ": ", st.message()));
  }
  P2P_ASSIGN_OR_RETURN(std::string wg_text, ReadFile(StatePath("wireguard.key")));
  auto wg = crypto::ParseKey(absl::StripAsciiWhitespace(wg_text));
  OPENSSL_cleanse(wg_text.data(), wg_text.size());
  if (!wg.ok()) return absl::InvalidArgumentError(absl::StrCat(StatePath("wireguard.key"), ": not a WireGuard key"));
  wireguard_key_ = *wg;
  P2P_ASSIGN_OR_RETURN(tls_key_pem_, ReadFile(StatePath("tls.key")));
  if (options_.server.empty()) {
    P2P_ASSIGN_OR_RETURN(std::string server, ReadFile(StatePath("server")));
    options_.server = std::string(absl::StripAsciiWhitespace(server));
  }
  auto snapshot = ReadFile(StatePath("snapshot.pb"));
  if (snapshot.ok()) {
    wire::Snapshot s;
    wire::Frame f;
    if (s.ParseFromString(*snapshot) && (*f.mutable_snapshot() = s, ValidateFrame(f).ok())) {
      stored_ = std::move(s);
    } else {
      P2P_LOG(kWarn, "node.snapshot_damaged").Kv("file", StatePath("snapshot.pb"));
    }
  }
  // The audit spool: batches not acknowledged before the last stop, and the next sequence.
  if (DIR* d = ::opendir(StatePath("audit").c_str())) {
    while (dirent* e = ::readdir(d)) {
      absl::string_view name = e->d_name;
      uint64_t seq = 0;
      if (absl::ConsumeSuffix(&name, ".pb") && absl::SimpleAtoi(name, &seq) && seq > 0) spool_.push_back(seq);
    }
    ::closedir(d);
  }
  std::sort(spool_.begin(), spool_.end());
  if (!spool_.empty()) next_sequence_ = spool_.back() + 1;
  auto next = ReadFile(StatePath("audit/next"));
  uint64_t stored_next = 0;
  if (next.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*next), &stored_next)) {
    next_sequence_ = std::max(next_sequence_, stored_next);
  }
  return absl::OkStatus();
}

void NodeAgent::Run(ApplyFn apply) {
  apply_ = std::move(apply);
  Dial();
}

std::unique_ptr<DialAttempt> NodeAgent::DialWireGuardTls(TlsDialCallback done) {
  DialOptions dopts;
  dopts.spki_sha256.assign(enrolled_.server_spki_sha256().begin(), enrolled_.server_spki_sha256().end());
  dopts.ca_pem = enrolled_.ca_certificate_pem();
  dopts.client_chain_pem = enrolled_.certificate_chain_pem();
  dopts.client_key_pem = tls_key_pem_;
  return DialTls(loop_, options_.server, std::move(dopts), std::string(nat::kWgTlsAlpn), std::move(done));
}

void NodeAgent::Dial() {
  DialOptions dopts;
  dopts.spki_sha256.assign(enrolled_.server_spki_sha256().begin(), enrolled_.server_spki_sha256().end());
  dopts.ca_pem = enrolled_.ca_certificate_pem();
  dopts.client_chain_pem = enrolled_.certificate_chain_pem();
  dopts.client_key_pem = tls_key_pem_;
  dopts.connection = options_.connection;
  dopts.connection.role = Role::kNode;
  dopts.connection.node_has_certificate = true;
  dopts.connection.node_id = enrolled_.node_id();
  const std::string server = options_.server;
  std::weak_ptr<bool> alive = alive_;
  dial_ = DialControl(loop_, server, std::move(dopts), [this, alive](absl::StatusOr<std::unique_ptr<Connection>> conn) {
    if (alive.expired()) return;
    dial_.reset();
    if (!conn.ok()) {
      ++counters_.dial_failures;
      P2P_LOG(kWarn, "node.control_unreachable").Kv("server", options_.server).Kv("error", conn.status().message());
      ScheduleDial();
      return;
    }
    conn_ = std::move(*conn);
    handler_ = std::make_unique<Session>(*this);
    conn_->Start(handler_.get());
    wire::Frame hello;
    hello.mutable_hello()->set_node_id(enrolled_.node_id());
    hello.mutable_hello()->set_last_snapshot_version(applied_version_);
    (void)conn_->Send(hello);  // on failure OnClosed follows
    session_started_ = absl::Now();
    // The session counts as up once the server answers (it sends the snapshot after every
    // Hello): a server that refuses the certificate closes instead.
  });
}

void NodeAgent::ScheduleDial() {
  const absl::Duration wait = backoff_.Next();
  P2P_LOG(kDebug, "node.redial").Kv("in_ms", absl::ToInt64Milliseconds(wait));
  redial_.Start(wait, [this] { Dial(); });
}

void NodeAgent::OnSessionClosed(const absl::Status& reason) {
  const bool was_up = session_up_;
  session_up_ = false;
  P2P_LOG(kInfo, "node.control_closed").Kv("server", options_.server).Kv("reason", reason.message());
  health_timer_.Stop();  // the next session sends the latest report at once
  if (was_up) backoff_.SessionEnded(absl::Now() - session_started_);
  // The connection is inside its own callback; it may be destroyed here (channel.h).
  conn_.reset();
  ScheduleDial();
}

void NodeAgent::OnSessionFrame(wire::Frame frame) {
  if (!session_up_ && !frame.has_error()) {
    session_up_ = true;
    ++counters_.sessions;
    P2P_LOG(kInfo, "node.control_connected").Kv("server", options_.server).Kv("node", enrolled_.node_id());
    if (!endpoints_.empty()) ReportEndpoints(endpoints_);
    sent_up_to_ = 0;
    SendSpool();
    // The server forgot this node's health with its last session: the latest goes out now.
    health_sent_ms_.reset();
    if (health_) health_unsent_ = true;
    SendHealth();
  }
  if (frame.has_snapshot()) {
    OnSnapshot(frame.snapshot());
  } else if (frame.has_ack() && frame.ack().what_case() == wire::Ack::kAuditBatch) {
    const uint64_t seq = frame.ack().audit_batch();
    auto it = std::find(spool_.begin(), spool_.end(), seq);
    if (it != spool_.end()) {
      spool_.erase(it);
      ::unlink(StatePath(absl::StrCat("audit/", SpoolName(seq))).c_str());
      ++counters_.audit_batches_acked;
    }
    SendSpool();
  } else if (frame.has_error()) {
    P2P_LOG(kWarn, "node.server_error").Kv("code", wire::ErrorCode_Name(frame.error().code())).Kv("error", frame.error().message());
  }
  WipeFrameSecrets(&frame);
}

void NodeAgent::OnSnapshot(const wire::Snapshot& snapshot) {
  wire::Frame ack;
  ack.mutable_ack()->set_snapshot_version(snapshot.version());
  const bool mine = options_.kind == wire::NODE_KIND_SITE ? snapshot.has_site() : snapshot.has_client();
  if (snapshot.version() <= applied_version_) {
    // Seen already (a resend after a reconnect): idempotent.
  } else if (!mine) {
    ack.mutable_ack()->set_error("the snapshot is for another kind of node");
  } else {
    absl::Status applied = apply_ ? apply_(snapshot) : absl::OkStatus();
    if (applied.ok()) {
      applied_version_ = snapshot.version();
      ++counters_.snapshots_applied;
      absl::Status saved = WriteFileAtomic(StatePath("snapshot.pb"), Stripped(snapshot).SerializeAsString());
      if (!saved.ok()) {
        P2P_LOG(kWarn, "node.snapshot_not_saved").Kv("error", saved.message());
      }
      P2P_LOG(kInfo, "node.snapshot_applied").Kv("version", snapshot.version()).Kv("resources", snapshot.resources_size())
          .Kv("peers", snapshot.peers_size());
    } else {
      ++counters_.snapshots_refused;
      std::string why(applied.message().substr(0, 1000));
      for (char& c : why) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
      }
      ack.mutable_ack()->set_error(why);
      P2P_LOG(kError, "node.snapshot_refused").Kv("version", snapshot.version()).Kv("error", applied.message());
    }
  }
  if (conn_) (void)conn_->Send(ack);
}

void NodeAgent::ReportEndpoints(std::vector<std::string> endpoints) {
  endpoints_ = std::move(endpoints);
  if (!connected() || endpoints_.empty()) return;
  wire::Frame f;
  for (const auto& e : endpoints_) f.mutable_endpoint_report()->add_endpoints(e);
  (void)conn_->Send(f);
}

void NodeAgent::ReportHealth(wire::Health health) {
  // Checked here because the server would refuse it and close the session, and the agent
  // would send the same report again after every reconnect.
  wire::Frame check;
  *check.mutable_health() = std::move(health);
  if (absl::Status valid = ValidateFrame(check); !valid.ok()) {
    ++counters_.health_invalid;
    P2P_LOG(kError, "node.health_invalid").Kv("error", valid.message());
    return;
  }
  health_ = std::move(*check.mutable_health());
  health_unsent_ = true;
  if (!connected()) {
    P2P_LOG(kDebug, "node.health_not_sent").Kv("why", "not connected; the latest goes out after the reconnect");
    return;
  }
  SendHealth();
}

void NodeAgent::SendHealth() {
  if (!health_ || !health_unsent_ || !connected()) return;
  const uint64_t now_ms = loop_.NowMs();
  const uint64_t interval_ms = net::ToUvMs(options_.health_interval);
  if (health_sent_ms_ && now_ms - *health_sent_ms_ < interval_ms) {
    // Too soon: the timer sends whatever is latest when the interval is over.
    if (!health_timer_.active()) {
      health_timer_.Start(absl::Milliseconds(*health_sent_ms_ + interval_ms - now_ms), [this] { SendHealth(); });
    }
    return;
  }
  wire::Frame f;
  *f.mutable_health() = *health_;
  if (!conn_->Send(f).ok()) return;  // the session is closing: sent again after the reconnect
  health_unsent_ = false;
  health_sent_ms_ = now_ms;
  ++counters_.health_sent;
}

void NodeAgent::Audit(wire::AuditEvent event) {
  if (spool_.size() >= options_.audit_spool_batches) {
    if (counters_.audit_dropped++ % 1000 == 0) {
      P2P_LOG(kError, "node.audit_dropped")
          .Kv("dropped", counters_.audit_dropped)
          .Kv("why", "the audit spool is full: the server has not acknowledged for a long time");
    }
    return;
  }
  ++counters_.audit_events;
  audit_pending_.push_back(std::move(event));
  if (audit_pending_.size() >= options_.audit_batch_events) {
    FlushAudit();
  } else if (!audit_timer_.active()) {
    audit_timer_.Start(options_.audit_flush, [this] { FlushAudit(); });
  }
}

void NodeAgent::FlushAudit() {
  audit_timer_.Stop();
  if (audit_pending_.empty()) return;
  wire::AuditBatch batch;
  batch.set_sequence(next_sequence_);
  for (auto& e : audit_pending_) *batch.add_events() = std::move(e);
  audit_pending_.clear();
  const std::string name = StatePath(absl::StrCat("audit/", SpoolName(batch.sequence())));
  absl::Status st = WriteFileAtomic(name, batch.SerializeAsString());
  if (st.ok()) st = WriteFileAtomic(StatePath("audit/next"), absl::StrCat(next_sequence_ + 1, "\n"));
  if (!st.ok()) {
    counters_.audit_dropped += static_cast<uint64_t>(batch.events_size());
    P2P_LOG(kError, "node.audit_dropped").Kv("events", batch.events_size()).Kv("error", st.message());
    return;
  }
  spool_.push_back(next_sequence_++);
  SendSpool();
}

void NodeAgent::SendSpool() {
  if (!connected()) return;
  // At most this many batches unacknowledged on the wire, so the send queue stays small.
  constexpr size_t kWindow = 8;
  size_t in_flight = 0;
  for (uint64_t seq : spool_) {
    if (seq <= sent_up_to_) ++in_flight;
  }
  for (uint64_t seq : spool_) {
    if (seq <= sent_up_to_) continue;
    if (in_flight >= kWindow) break;
    auto data = ReadFile(StatePath(absl::StrCat("audit/", SpoolName(seq))));
    wire::Frame f;
    if (!data.ok() || !f.mutable_audit_batch()->ParseFromString(*data)) {
      P2P_LOG(kError, "node.audit_spool_damaged").Kv("sequence", seq);
      sent_up_to_ = seq;
      continue;
    }
    if (!conn_->Send(f).ok()) return;
    ++counters_.audit_batches_sent;
    sent_up_to_ = seq;
    ++in_flight;
  }
}

}  // namespace p2proxy::control
