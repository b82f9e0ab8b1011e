// redirect.cc: RedirectRouter.
#include "http/redirect.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace p2proxy::http {

std::string RedirectLocation(std::string_view authority, std::string_view path, uint16_t https_port) {
  if (path.empty() || path[0] != '/') return "";
  std::string_view host = authority;
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return "";
    std::string_view rest = host.substr(close + 1);
    host = host.substr(0, close + 1);
    if (!rest.empty() && rest[0] != ':') return "";
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return "";
    }
    if (host.size() < 3) return "";
  } else {
    const size_t colon = host.find(':');
    if (colon != std::string_view::npos) host = host.substr(0, colon);
    if (host.empty()) return "";
    for (char c : host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return "";
    }
  }
  std::string out = "https://";
  out.append(host);
  if (https_port != 443) absl::StrAppend(&out, ":", https_port);
  out.append(path);
  return out;
}

// RedirectHandler answers on its first event (OnRequestEnd comes at once for a bodiless
// request; a request with a body is answered when its first bytes arrive).
class RedirectHandler final : public ExchangeHandler {
 public:
  RedirectHandler(RedirectRouter* router, Exchange& exchange) : router_(router), exchange_(exchange) {}
  void OnRequestBody(base::ByteSpan) override { Answer(); }
  void OnRequestEnd() override { Answer(); }
  void OnReset(const absl::Status&) override { answered_ = true; }

 private:
  void Answer() {
    if (answered_) return;
    answered_ = true;
    const RequestHead& r = exchange_.request();
    const std::string location = RedirectLocation(r.authority, r.path, router_->https_port_);
    if (location.empty()) {
      ++router_->rejected_;
      exchange_.SendError(400, "bad request: a Host is needed to redirect to https");
      return;
    }
    ++router_->redirects_;
    std::string body = absl::StrCat("Redirecting to ", location, "\n");
    ResponseHead head;
    head.status = 308;
    head.headers.push_back({"location", location});
    head.headers.push_back({"content-type", "text/plain; charset=utf-8"});
    head.headers.push_back({"cache-control", "no-store"});
    head.content_length = static_cast<int64_t>(body.size());
    exchange_.SendResponseHead(head, false);
    exchange_.SendResponseBody(base::ByteSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size()), true);
  }

  RedirectRouter* router_;
  Exchange& exchange_;
  bool answered_ = false;
};

std::unique_ptr<ExchangeHandler> RedirectRouter::OnRequest(Exchange& exchange) {
  return std::make_unique<RedirectHandler>(this, exchange);
}

}  // namespace p2proxy::http
