// reverse_proxy.cc: ReverseProxy and ProxyHandler, the per-request bridge between an Exchange
// (client side) and an UpstreamExchange (upstream side).
#include "http/reverse_proxy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "http/h1_parser.h"

namespace p2proxy::http {
namespace {

bool HopByHop(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" || name == "te" ||
         name == "trailer" || name == "transfer-encoding" || name == "upgrade";
}

// ConnectionTokens collects the field names listed in Connection fields (lower-cased).
void ConnectionTokens(const std::vector<Header>& headers, std::vector<std::string>* out) {
  for (const Header& h : headers) {
    if (h.name != "connection") continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string_view item = v.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) {
        std::string token(item);
        AsciiLowerInPlace(&token);
        out->push_back(std::move(token));
      }
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
}

bool Named(const std::vector<std::string>& tokens, std::string_view name) {
  return std::find(tokens.begin(), tokens.end(), name) != tokens.end();
}

std::string_view AsStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

UpstreamRequest BuildUpstreamRequest(const RequestHead& r, const ConnectionInfo& connection,
                                     const std::vector<Header>& identity_headers, std::string_view target) {
  UpstreamRequest u;
  u.method = r.method;
  u.target = target.empty() ? r.path : std::string(target);
  u.host = r.authority;
  std::vector<std::string> named;
  ConnectionTokens(r.headers, &named);
  std::string xff;
  std::string cookie;
  u.headers.reserve(r.headers.size() + identity_headers.size() + 5);
  for (const Header& h : r.headers) {
    const std::string& n = h.name;
    if (HopByHop(n) || n == "host" || n == "content-length" || n == "expect" || n == "x-forwarded-proto" ||
        n == "x-forwarded-host" || n.rfind("x-p2proxy-", 0) == 0 || (!named.empty() && Named(named, n))) {
      continue;
    }
    if (n == "x-forwarded-for") {
      if (!xff.empty()) xff.append(", ");
      xff.append(h.value);
      continue;
    }
    if (n == "cookie" && r.version == 20) {
      // HTTP/2 may split cookies into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
      if (!cookie.empty()) cookie.append("; ");
      cookie.append(h.value);
      continue;
    }
    u.headers.push_back(h);
  }
  if (!cookie.empty()) u.headers.push_back({"cookie", std::move(cookie)});
  for (const Header& h : identity_headers) u.headers.push_back(h);
  if (!xff.empty()) xff.append(", ");
  xff.append(connection.peer_address);
  u.headers.push_back({"x-forwarded-for", std::move(xff)});
  u.headers.push_back({"x-forwarded-proto", r.scheme});
  u.headers.push_back({"x-forwarded-host", r.authority});
  if (r.upgrade_websocket) {
    u.headers.push_back({"connection", "upgrade"});
    u.headers.push_back({"upgrade", "websocket"});
    u.upgrade = true;
  }
  if (r.content_length >= 0) {
    u.content_length = r.content_length;
  } else if (r.end_stream) {
    // No body. Methods that define one say so explicitly, or some upstreams answer 411.
    if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
      u.content_length = 0;
    } else {
      u.no_body = true;
    }
  }
  return u;
}

std::vector<Header> FilterResponseHeaders(std::vector<Header>& headers, bool upgrade) {
  std::vector<std::string> named;
  ConnectionTokens(headers, &named);
  std::vector<Header> out;
  out.reserve(headers.size());
  for (Header& h : headers) {
    if (h.name == "content-length") continue;
    if (upgrade && h.name == "upgrade") {
      out.push_back(std::move(h));  // a 101 names Upgrade in its Connection field: keep it
      continue;
    }
    if (HopByHop(h.name)) continue;
    if (!named.empty() && Named(named, h.name)) continue;
    out.push_back(std::move(h));
  }
  return out;
}

// ProxyHandler carries one request. It reports its RequestRecord when destroyed.
class ProxyHandler final : public ExchangeHandler, public UpstreamExchange::Delegate {
 public:
  ProxyHandler(ReverseProxy* proxy, Exchange& exchange, ProxyContext& context)
      : proxy_(proxy), exchange_(exchange), context_(context), alive_(std::make_shared<bool>(true)) {
    const RequestHead& r = exchange.request();
    record_.method = r.method;
    record_.authority = r.authority;
    record_.path = r.path;
    record_.start_unix_ms = absl::ToUnixMillis(proxy_->clock_.Wall());
    start_ = proxy_->clock_.Monotonic();
  }

  ~ProxyHandler() override {
    *alive_ = false;
    upstream_.reset();  // not inside its callbacks: the server destroys us from its own turn
    record_.duration_ms = static_cast<uint64_t>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(proxy_->clock_.Monotonic() - start_)));
    if (context_.on_request_done) context_.on_request_done(record_);
  }

  void Start() {
    ++proxy_->counters_.requests;
    const RequestHead& r = exchange_.request();
    Authorization auth = context_.authorize ? context_.authorize(r) : Authorization();
    if (auth.status != 0) {
      ++proxy_->counters_.denied;
      if (auth.status == 400) ++proxy_->counters_.bad_requests;
      record_.allowed = false;
      record_.error = std::move(auth.reason);
      local_ = true;
      // Answered on the next turn: the server is still making this handler.
      proxy_->loop_.Post([this, alive = alive_, deny = auth.status] {
        if (!*alive || done_) return;
        record_.status = deny;
        exchange_.SendError(deny, deny == 403 ? "forbidden" : deny == 400 ? "bad request" : "denied");
      });
      return;
    }
    // The upstream gets the target the policy checked, never the client's spelling of it.
    upstream_ = proxy_->pool_.Start(
        BuildUpstreamRequest(r, exchange_.connection(), context_.identity_headers, auth.target), this);
  }

  // --- ExchangeHandler ----------------------------------------------------------------------
  void OnRequestBody(base::ByteSpan data) override {
    record_.bytes_from_client += data.size();
    if (!upstream_ || local_) return;  // nobody wants it: discarded
    upstream_->SendBody(data, false);
    if (!req_paused_ && upstream_->WriteQueueSize() > ReverseProxy::kHighWater) {
      req_paused_ = true;
      exchange_.PauseRequestBody();
    }
  }

  void OnRequestEnd() override {
    if (upstream_ && !local_) upstream_->SendBody(base::ByteSpan(), true);
  }

  void OnReset(const absl::Status& why) override {
    done_ = true;
    if (!response_complete_ && record_.error.empty()) {
      record_.error = absl::StrCat("client: ", why.message());
    }
    if (upstream_) proxy_->loop_.DeferDelete(std::move(upstream_));
  }

  void OnResponseDrained() override {
    if (resp_paused_ && upstream_) {
      resp_paused_ = false;
      upstream_->ResumeResponse();
    }
  }

  // --- UpstreamExchange::Delegate -----------------------------------------------------------
  void OnResponseHead(UpstreamResponse& resp) override {
    if (done_) return;
    if (resp.status == 101) {
      Upgrade(resp);
      return;
    }
    ResponseHead head;
    head.status = resp.status;
    head.headers = FilterResponseHeaders(resp.headers, false);
    head.content_length = resp.content_length;
    record_.status = resp.status;
    head_sent_ = true;
    end_sent_ = resp.end_stream;
    exchange_.SendResponseHead(head, resp.end_stream);
  }

  void OnResponseBody(base::ByteSpan data) override {
    if (done_) return;
    record_.bytes_to_client += data.size();
    exchange_.SendResponseBody(data, false);
    if (!resp_paused_ && upstream_ && exchange_.ResponseQueueSize() > ReverseProxy::kHighWater) {
      resp_paused_ = true;
      upstream_->PauseResponse();
    }
  }

  void OnResponseEnd() override {
    if (done_) return;
    response_complete_ = true;
    if (!end_sent_) {
      end_sent_ = true;
      exchange_.SendResponseBody(base::ByteSpan(), true);
    }
    StopWantingBody();
  }

  void OnUpstreamError(UpstreamError kind, const absl::Status& status) override {
    if (done_) return;
    ++proxy_->counters_.upstream_errors;
    record_.error = std::string(AsStd(status.message()));
    local_ = true;
    if (upstream_) proxy_->loop_.DeferDelete(std::move(upstream_));
    if (!head_sent_) {
      const bool timeout = kind == UpstreamError::kConnectTimeout || kind == UpstreamError::kHeaderTimeout;
      record_.status = timeout ? 504 : 502;
      exchange_.SendError(record_.status, timeout ? "upstream timed out" : "bad gateway");
    } else {
      exchange_.Abort();
    }
    StopWantingBody();
  }

  void OnRequestDrained() override {
    if (req_paused_ && !done_) {
      req_paused_ = false;
      exchange_.ResumeRequestBody();
    }
  }

 private:
  // StopWantingBody: the upstream side is over; the rest of the request body is discarded.
  void StopWantingBody() {
    local_ = true;
    if (req_paused_) {
      req_paused_ = false;
      exchange_.ResumeRequestBody();
    }
  }

  void Upgrade(UpstreamResponse& resp) {
    ResponseHead head;
    head.status = 101;
    head.headers = FilterResponseHeaders(resp.headers, true);
    record_.status = 101;
    record_.websocket = true;
    head_sent_ = true;
    exchange_.SendResponseHead(head, false);
    std::vector<uint8_t> client_pending, upstream_pending;
    std::unique_ptr<net::Stream> client = exchange_.TakeUpgradedStream(&client_pending);
    std::unique_ptr<net::Stream> upstream = upstream_->TakeUpgradedStream(&upstream_pending);
    proxy_->loop_.DeferDelete(std::move(upstream_));  // we are inside its callback
    if (!client || !upstream) {
      record_.error = "upgrade: a stream could not be taken over";
      if (upstream) upstream->Close();
      exchange_.Abort();
      return;
    }
    response_complete_ = true;
    ++proxy_->counters_.upgrades;
    if (proxy_->on_upgrade_) {
      proxy_->on_upgrade_(std::move(client), std::move(client_pending), std::move(upstream), std::move(upstream_pending));
    }
  }

  ReverseProxy* proxy_;
  Exchange& exchange_;
  ProxyContext& context_;
  std::unique_ptr<UpstreamExchange> upstream_;
  RequestRecord record_;
  absl::Duration start_;
  std::shared_ptr<bool> alive_;
  bool local_ = false;  // the answer is (or will be) local: the request body is not forwarded
  bool req_paused_ = false;
  bool resp_paused_ = false;
  bool head_sent_ = false;
  bool end_sent_ = false;
  bool response_complete_ = false;
  bool done_ = false;  // OnReset arrived
};

ReverseProxy::ReverseProxy(net::Loop& loop, base::Clock& clock, ReverseProxyOptions options, UpgradeCallback on_upgrade)
    : loop_(loop), clock_(clock), pool_(loop, options.upstream, options.pool), on_upgrade_(std::move(on_upgrade)) {}

ReverseProxy::~ReverseProxy() = default;

std::unique_ptr<ExchangeHandler> ReverseProxy::Handle(Exchange& exchange, ProxyContext& context) {
  auto handler = std::make_unique<ProxyHandler>(this, exchange, context);
  handler->Start();
  return handler;
}

}  // namespace p2proxy::http
