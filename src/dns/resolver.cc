// resolver.cc: the client's resolver: local answers for private zones, cache, upstream.
#include "dns/resolver.h"

#include <algorithm>

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

}  // namespace

// TcpSession reads length-prefixed queries from one TCP client and writes the answers back,
// in whatever order they complete (RFC 7766 §7). It closes after an idle period.
class Resolver::TcpSession : public net::StreamHandler, public net::DeferredDeletable {
 public:
  TcpSession(Resolver& owner, uint64_t id, std::unique_ptr<net::TcpStream> stream)
      : owner_(owner), id_(id), stream_(std::move(stream)), idle_(owner.loop_) {
    stream_->SetHandler(this);
    ArmIdle();
  }

  void OnData(base::ByteSpan data) override {
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    size_t off = 0;
    while (buffer_.size() - off >= 2) {
      const size_t len = (size_t{buffer_[off]} << 8) | buffer_[off + 1];
      if (buffer_.size() - off - 2 < len) break;
      ++owner_.counters_.tcp_queries;
      ++in_flight_;
      std::weak_ptr<bool> alive = alive_;
      owner_.HandleQuery(base::ByteSpan(buffer_.data() + off + 2, len), true,
                         [this, alive](std::vector<uint8_t> response) {
                           if (alive.expired()) return;
                           Send(std::move(response));
                         });
      if (alive_ == nullptr) return;  // HandleQuery never ends a session synchronously
      off += 2 + len;
    }
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(off));
    if (in_flight_ >= owner_.options_.max_tcp_pipeline) stream_->PauseReading();
    ArmIdle();
  }
  void OnEnd() override {
    peer_done_ = true;
    MaybeFinish();
  }
  void OnError(const absl::Status&) override { Finish(); }

 private:
  void Send(std::vector<uint8_t> response) {
    std::vector<uint8_t> framed;
    framed.reserve(response.size() + 2);
    framed.push_back(static_cast<uint8_t>(response.size() >> 8));
    framed.push_back(static_cast<uint8_t>(response.size()));
    framed.insert(framed.end(), response.begin(), response.end());
    stream_->WriteOwned(std::move(framed));
    if (in_flight_-- == owner_.options_.max_tcp_pipeline) stream_->ResumeReading();
    ArmIdle();
    MaybeFinish();
  }
  void OnWriteDrained() override { MaybeFinish(); }
  // MaybeFinish ends the session once the client has half-closed and every answer has reached
  // the kernel: destroying the stream earlier would drop answers still queued in it.
  void MaybeFinish() {
    if (!peer_done_ || in_flight_ != 0) return;
    if (!shut_down_) {
      shut_down_ = true;
      stream_->Shutdown();
    }
    if (stream_->WriteQueueSize() == 0) Finish();
  }
  void ArmIdle() {
    idle_.Start(owner_.options_.tcp_idle_timeout, [this] {
      if (in_flight_ > 0) return ArmIdle();
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
  std::unique_ptr<net::TcpStream> stream_;
  net::Timer idle_;
  std::vector<uint8_t> buffer_;
  size_t in_flight_ = 0;
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
  ++counters_.tcp_connections;
  const uint64_t id = next_session_++;
  sessions_.emplace(id, std::make_unique<TcpSession>(*this, id, std::move(stream)));
}

void Resolver::EndSession(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  // The session may be on the stack (inside its own callback): destroy it on a later turn.
  loop_.DeferDelete(std::move(it->second));
  sessions_.erase(it);
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
