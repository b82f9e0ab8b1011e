// resolver.cc: the client's resolver: local answers for private zones, cache, upstream.
#include "dns/resolver.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "dns/fast_path.h"
#include "net/timer.h"

namespace p2proxy::dns {
namespace {

// Without EDNS a UDP answer holds 512 bytes (RFC 1035 §4.2.1). With it we honour the client's
// size but never exceed 1232, the DNS flag day 2020 value that avoids IP fragmentation.
constexpr size_t kClassicUdp = kMaxUdpPayload;
constexpr size_t kMaxUdp = kMaxEdnsUdpPayload;
constexpr size_t kMaxTcp = 65535;

size_t UdpLimit(const Message& query) {
  return UdpAnswerLimit(query.edns.has_value(), query.edns ? query.edns->udp_payload_size : 0);
}

// OurEdns is the OPT we put in an answer when the query had one.
Edns OurEdns() {
  Edns e;
  e.udp_payload_size = kMaxUdp;
  return e;
}

// ErrorResponse answers |query| with |rcode| and nothing else but the question and OPT.
Message ErrorResponse(const Header& h, const std::vector<Question>& questions, bool edns,
                      uint8_t rcode) {
  Message m;
  m.header.id = h.id;
  m.header.qr = true;
  m.header.opcode = h.opcode;
  m.header.rd = h.rd;
  m.header.ra = true;
  m.header.rcode = rcode;
  m.questions = questions;
  if (edns) m.edns = OurEdns();
  return m;
}

// SourceOf is |addr| without its port. An IPv4-mapped IPv6 address (a dual-stack listener)
// counts as the IPv4 address it stands for.
std::array<uint8_t, 17> SourceOf(const base::SocketAddress& addr) {
  std::array<uint8_t, 17> key{};
  if (addr.family() == AF_INET) {
    key[0] = 4;
    std::memcpy(&key[1], &reinterpret_cast<const sockaddr_in*>(addr.sa())->sin_addr, 4);
  } else if (addr.family() == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(addr.sa())->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      key[0] = 4;
      std::memcpy(&key[1], &a6->s6_addr[12], 4);
    } else {
      key[0] = 6;
      std::memcpy(&key[1], a6->s6_addr, 16);
    }
  }
  return key;
}

}  // namespace

// TcpSession reads length-prefixed queries from one TCP client and writes the answers back,
// in whatever order they complete (RFC 7766 §7). What a client can make it hold is bounded:
//   - queries: at most max_tcp_pipeline in flight; past that, the rest wait in |buffer_| and
//     reading pauses;
//   - answers: once the stream's write queue reaches max_tcp_write_queue (a client that
//     pipelines but does not read), no further query is handled and reading pauses until
//     OnWriteDrained;
//   - input: while reading runs every complete query is handled, so |buffer_| holds one
//     partial query (at most 2 + 65535 bytes), plus, while paused, the rest of the last read.
// The idle timer restarts on each complete query and each answer, never on a partial query's
// bytes, so a client that trickles a query byte by byte is closed after tcp_idle_timeout.
class Resolver::TcpSession : public net::StreamHandler, public net::DeferredDeletable {
 public:
  TcpSession(Resolver& owner, uint64_t id, SourceKey source, std::unique_ptr<net::TcpStream> stream)
      : owner_(owner), id_(id), source_(source), stream_(std::move(stream)), idle_(owner.loop_) {
    stream_->SetHandler(this);
    ArmIdle();
  }

  const SourceKey& source() const { return source_; }
  size_t input_len() const { return buffer_.size(); }
  size_t output_len() const { return stream_->WriteQueueSize(); }

  void OnData(base::ByteSpan data) override {
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    HandleBuffered();
  }
  void OnEnd() override {
    peer_done_ = true;
    MaybeFinish();
  }
  void OnError(const absl::Status&) override { Finish(); }
  void OnWriteDrained() override { HandleBuffered(); }

 private:
  bool PipelineFull() const { return in_flight_ >= owner_.options_.max_tcp_pipeline; }
  bool WriteQueueFull() const { return stream_->WriteQueueSize() >= owner_.options_.max_tcp_write_queue; }
  // CompleteQueryLen is the length of the framed query at the front of |buffer_| (prefix
  // included), or 0 if it has not fully arrived.
  size_t CompleteQueryLen() const {
    if (buffer_.size() < 2) return 0;
    const size_t len = 2 + ((size_t{buffer_[0]} << 8) | buffer_[1]);
    return buffer_.size() >= len ? len : 0;
  }

  // HandleBuffered hands the complete queries in |buffer_| to the resolver until the pipeline
  // or the write queue is full, then pauses or resumes reading to match.
  void HandleBuffered() {
    if (handling_ || !alive_) return;  // an answer given synchronously, inside the loop below
    handling_ = true;
    size_t off = 0;
    while (!PipelineFull() && !WriteQueueFull() && buffer_.size() - off >= 2) {
      const size_t len = (size_t{buffer_[off]} << 8) | buffer_[off + 1];
      if (buffer_.size() - off - 2 < len) break;
      ++owner_.counters_.tcp_queries;
      ++in_flight_;
      owner_.HandleQuery(base::ByteSpan(buffer_.data() + off + 2, len), true, PendingAnswer(this));
      if (!alive_) return;  // cannot happen: nothing in HandleQuery ends a session at once
      off += 2 + len;
      ArmIdle();
    }
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(off));
    handling_ = false;
    UpdateReading();
    MaybeFinish();
  }

  void UpdateReading() {
    const bool full = PipelineFull() || WriteQueueFull();
    if (full == reading_paused_) return;
    reading_paused_ = full;
    if (full) {
      if (WriteQueueFull()) ++owner_.counters_.tcp_write_paused;
      stream_->PauseReading();
    } else {
      stream_->ResumeReading();
    }
  }

  // PendingAnswer is the Reply a query is handed to HandleQuery with. Called, it sends the
  // answer; destroyed uncalled (the resolver dropped the query: a runt, a response, an answer
  // that could not be built), it still gives the query's pipeline slot back, else a client
  // could fill the pipeline with queries that never end and hold the session forever.
  class PendingAnswer {
   public:
    explicit PendingAnswer(TcpSession* session) : session_(session), alive_(session->alive_) {}
    PendingAnswer(PendingAnswer&& other) noexcept
        : session_(std::exchange(other.session_, nullptr)), alive_(std::move(other.alive_)) {}
    PendingAnswer& operator=(PendingAnswer&&) = delete;
    ~PendingAnswer() {
      if (session_ != nullptr && !alive_.expired()) session_->Send(std::nullopt);
    }
    void operator()(std::vector<uint8_t> response) {
      TcpSession* session = std::exchange(session_, nullptr);
      if (session != nullptr && !alive_.expired()) session->Send(std::move(response));
    }

   private:
    TcpSession* session_;
    std::weak_ptr<bool> alive_;  // the session's: expired once it is finished
  };

  // Send writes |response| (none: the query was dropped) and frees its pipeline slot.
  void Send(std::optional<std::vector<uint8_t>> response) {
    --in_flight_;
    if (!response) {
      HandleBuffered();
      return;
    }
    std::vector<uint8_t> framed;
    framed.reserve(response->size() + 2);
    framed.push_back(static_cast<uint8_t>(response->size() >> 8));
    framed.push_back(static_cast<uint8_t>(response->size()));
    framed.insert(framed.end(), response->begin(), response->end());
    stream_->WriteOwned(std::move(framed));
    ArmIdle();
    HandleBuffered();  // a forwarded answer frees a pipeline slot (a no-op inside the loop)
  }
  // MaybeFinish ends the session once the client has half-closed and every answer has reached
  // the kernel: destroying the stream earlier would drop answers still queued in it. A
  // partial query left at the end never completes and is dropped.
  void MaybeFinish() {
    if (!peer_done_ || in_flight_ != 0 || CompleteQueryLen() != 0) return;
    if (!shut_down_) {
      shut_down_ = true;
      stream_->Shutdown();
    }
    if (stream_->WriteQueueSize() == 0) Finish();
  }
  void ArmIdle() {
    idle_.Start(owner_.options_.tcp_idle_timeout, [this] {
      if (in_flight_ > 0) return ArmIdle();
      ++owner_.counters_.tcp_idle_closed;
      Finish();
    });
  }
  // Finish hands the session back to the resolver, which destroys it on a later turn (the
  // stream's callbacks may be on the stack).
  void Finish() {
    if (!alive_) return;
    alive_.reset();
    idle_.Stop();
    owner_.EndSession(id_);
  }

  Resolver& owner_;
  uint64_t id_;
  SourceKey source_;
  std::unique_ptr<net::TcpStream> stream_;
  net::Timer idle_;
  std::vector<uint8_t> buffer_;
  size_t in_flight_ = 0;
  bool handling_ = false;
  bool reading_paused_ = false;
  bool peer_done_ = false;
  bool shut_down_ = false;
  // alive_ is shared (weakly) with the pending answers' callbacks: they may outlive the session.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

Resolver::Resolver(net::Loop& loop, const base::Clock& clock, ZoneTable zones, const Options& options)
    : loop_(loop), options_(options), zones_(std::move(zones)), cache_(clock, options.cache_entries),
      udp_slots_(kMaxUdpSlots * kMaxFastAnswerLen), alive_(std::make_shared<bool>(true)) {
  udp_owned_.reserve(kMaxUdpSlots);
  udp_out_.reserve(kMaxUdpSlots);
  uv_check_init(loop.uv(), flush_.get());
  flush_.MarkInitialized();
  flush_->data = this;
  // A pending flush must not keep the loop alive on its own.
  uv_unref(flush_.handle());
}

absl::StatusOr<std::unique_ptr<Resolver>> Resolver::Create(net::Loop& loop, const base::Clock& clock,
                                                           ZoneTable zones, const Options& options) {
  std::unique_ptr<Resolver> r(new Resolver(loop, clock, std::move(zones), options));
  if (!options.upstreams.empty()) {
    Upstream::Options uo;
    uo.servers = options.upstreams;
    uo.timeout = options.upstream_timeout;
    P2P_ASSIGN_OR_RETURN(r->upstream_, Upstream::Create(loop, uo));
  }
  net::UdpSocket::Options udp_options;
  udp_options.max_datagram = 65536;
  udp_options.batch = 32;
  udp_options.rcvbuf = 1 << 20;
  udp_options.sndbuf = 1 << 20;
  Resolver* self = r.get();
  auto udp = net::UdpSocket::Bind(
      loop, options.listen, [self](absl::Span<const base::Datagram> batch) { self->OnUdp(batch); },
      udp_options);
  if (!udp.ok()) {
    return absl::UnavailableError(absl::StrCat("dns resolver: listen udp ", options.listen.ToString(), ": ",
                                               udp.status().message(),
                                               "; is the address assigned here and the port free?"));
  }
  r->udp_ = std::move(*udp);
  base::SocketAddress tcp_addr = options.listen;
  tcp_addr.set_port(r->udp_->local_address().port());
  auto tcp = net::TcpListener::Listen(loop, tcp_addr,
                                      [self](std::unique_ptr<net::TcpStream> s) { self->OnTcp(std::move(s)); });
  if (!tcp.ok()) {
    return absl::UnavailableError(absl::StrCat("dns resolver: listen tcp ", tcp_addr.ToString(), ": ",
                                               tcp.status().message()));
  }
  r->tcp_ = std::move(*tcp);
  P2P_LOG(kInfo, "dns.resolver_listening")
      .Kv("addr", r->local_address().ToString())
      .Kv("upstreams", options.upstreams.size())
      .Kv("records", r->zones_.num_records());
  return r;
}

Resolver::~Resolver() {
  *alive_ = false;
  sessions_.clear();
  upstream_.reset();  // pending callbacks run now, see Cancelled (or !alive) and do nothing
}

void Resolver::OnUdp(absl::Span<const base::Datagram> batch) {
  // Answers ready during the batch (local names, cache hits) wait for FlushUdp; forwarded ones
  // go out when the upstream answers. The common query, a private name, is answered by
  // AnswerFast straight into a slot: no parse into a Message, no allocation.
  in_udp_batch_ = true;
  for (const base::Datagram& d : batch) {
    ++counters_.udp_queries;
    if (num_udp_slots_used_ == kMaxUdpSlots) FlushUdp();
    uint8_t* slot = udp_slots_.data() + num_udp_slots_used_ * kMaxFastAnswerLen;
    if (const size_t len = AnswerFast(zones_, d.data, base::MutableByteSpan(slot, kMaxFastAnswerLen))) {
      ++counters_.answered_locally;
      ++counters_.fast_path;
      ++num_udp_slots_used_;
      udp_out_.push_back(base::Datagram{base::ByteSpan(slot, len), d.addr});
      continue;
    }
    const base::SocketAddress from = d.addr;
    HandleQuery(d.data, false, [this, from](std::vector<uint8_t> response) {
      if (!in_udp_batch_) {
        udp_->Send(from, response);
        return;
      }
      udp_owned_.push_back(std::move(response));
      udp_out_.push_back(base::Datagram{udp_owned_.back(), from});
    });
  }
  in_udp_batch_ = false;
  if (!udp_out_.empty() && !flush_armed_) {
    flush_armed_ = true;
    uv_check_start(flush_.get(), [](uv_check_t* h) {
      if (h->data != nullptr) static_cast<Resolver*>(h->data)->FlushUdp();
    });
  }
}

void Resolver::FlushUdp() {
  if (flush_armed_) {
    flush_armed_ = false;
    uv_check_stop(flush_.get());
  }
  if (!udp_out_.empty()) udp_->SendBatch(udp_out_);
  udp_out_.clear();
  udp_owned_.clear();
  num_udp_slots_used_ = 0;
}

void Resolver::OnTcp(std::unique_ptr<net::TcpStream> stream) {
  if (sessions_.size() >= options_.max_tcp_connections) {
    ++counters_.tcp_refused;
    stream->Close();
    return;
  }
  // One client must not take every connection: the cap per source leaves room for others.
  const SourceKey source = SourceOf(stream->peer_address());
  size_t& from_source = sessions_per_source_[source];
  if (from_source >= options_.max_tcp_connections_per_source) {
    ++counters_.tcp_refused_per_source;
    if (from_source == 0) sessions_per_source_.erase(source);  // a cap of 0
    stream->Close();
    return;
  }
  ++from_source;
  ++counters_.tcp_connections;
  const uint64_t id = next_session_++;
  sessions_.emplace(id, std::make_unique<TcpSession>(*this, id, source, std::move(stream)));
}

void Resolver::EndSession(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  auto from = sessions_per_source_.find(it->second->source());
  if (from != sessions_per_source_.end() && --from->second == 0) sessions_per_source_.erase(from);
  // The session may be on the stack (inside its own callback): destroy it on a later turn.
  loop_.DeferDelete(std::move(it->second));
  sessions_.erase(it);
}

TcpBacklog Resolver::tcp_backlog() const {
  TcpBacklog b;
  b.num_sessions = sessions_.size();
  for (const auto& [id, session] : sessions_) {
    b.input_len += session->input_len();
    b.output_len += session->output_len();
  }
  return b;
}

void Resolver::Respond(const Message& response, size_t limit, Reply& reply, ResolverCounters& c) {
  std::vector<uint8_t> out;
  if (!BuildMessage(response, limit, &out)) return;
  if (response.header.rcode == kRcodeServFail) ++c.servfail;
  // BuildMessage sets TC when it had to drop records to fit.
  if (out.size() >= 3 && (out[2] & 0x02) && !response.header.tc) ++c.truncated;
  reply(std::move(out));
}

void Resolver::HandleQuery(base::ByteSpan wire, bool over_tcp, Reply reply) {
  Header header;
  if (!PeekHeader(wire, &header) || header.qr) {
    ++counters_.dropped;  // too short to answer, or a response: never answer those
    return;
  }
  Message query;
  const ParseError err = ParseMessage(wire, &query);
  if (err != ParseError::kOk) {
    ++counters_.formerr;
    Respond(ErrorResponse(header, {}, false, kRcodeFormErr), kClassicUdp, reply, counters_);
    return;
  }
  const size_t limit = over_tcp ? kMaxTcp : UdpLimit(query);
  // Private names first: whatever else is wrong with the query, it is answered here (I2).
  Message response;
  if (!query.questions.empty() && zones_.Answer(query, &response)) {
    ++counters_.answered_locally;
    Respond(response, limit, reply, counters_);
    return;
  }
  if (query.questions.size() != 1) {
    ++counters_.formerr;
    Respond(ErrorResponse(header, query.questions, query.edns.has_value(), kRcodeFormErr), limit, reply,
            counters_);
    return;
  }
  if (header.opcode != 0) {
    ++counters_.notimp;
    Respond(ErrorResponse(header, query.questions, query.edns.has_value(), kRcodeNotImp), limit, reply,
            counters_);
    return;
  }
  const Question q = query.questions[0];
  if (cache_.Lookup(q, &response)) {
    ++counters_.cache_hits;
    response.header.id = header.id;
    response.header.rd = header.rd;
    response.header.tc = false;
    if (query.edns) {
      response.edns = OurEdns();
    } else {
      response.edns.reset();
    }
    Respond(response, limit, reply, counters_);
    return;
  }
  if (!upstream_) {
    Respond(ErrorResponse(header, query.questions, query.edns.has_value(), kRcodeServFail), limit, reply,
            counters_);
    return;
  }
  ++counters_.forwarded;
  std::weak_ptr<bool> alive = alive_;
  upstream_->Forward(wire, [this, alive, header, q, edns = query.edns.has_value(), limit,
                            reply = std::move(reply)](absl::StatusOr<std::vector<uint8_t>> got) mutable {
    if (alive.expired() || !*alive.lock() || absl::IsCancelled(got.status())) return;
    Message upstream_response;
    if (!got.ok() || ParseMessage(*got, &upstream_response) != ParseError::kOk) {
      Respond(ErrorResponse(header, {q}, edns, kRcodeServFail), limit, reply, counters_);
      return;
    }
    cache_.Insert(q, upstream_response);
    if (got->size() <= limit) {
      reply(std::move(*got));  // as the upstream wrote it, with the client's id
      return;
    }
    Respond(upstream_response, limit, reply, counters_);
  });
}

}  // namespace p2proxy::dns
