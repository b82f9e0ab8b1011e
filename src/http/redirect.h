// redirect.h: the Router for plain-HTTP :80 listeners: every request is answered with
// "308 Permanent Redirect" to the same host and path over https. A request without a usable
// Host gets 400. The request body, if any, is not read (the server closes after answering).
#ifndef P2PROXY_HTTP_REDIRECT_H_
#define P2PROXY_HTTP_REDIRECT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/exchange.h"

namespace p2proxy::http {

class RedirectRouter final : public Router {
 public:
  // |https_port| is added to Location unless it is 443.
  explicit RedirectRouter(uint16_t https_port = 443) : https_port_(https_port) {}
  std::unique_ptr<ExchangeHandler> OnRequest(Exchange& exchange) override;

  uint64_t redirects() const { return redirects_; }
  uint64_t rejected() const { return rejected_; }

 private:
  friend class RedirectHandler;
  uint16_t https_port_;
  uint64_t redirects_ = 0;
  uint64_t rejected_ = 0;
};

// RedirectLocation gives "https://<host>[:port]<path>" for |authority| (its port dropped) and
// |path|, or "" when |authority| is not a plausible host (empty, or holding anything but
// letters, digits, '.', '-', '_', or a bracketed IPv6 literal) or |path| is not origin-form.
std::string RedirectLocation(std::string_view authority, std::string_view path, uint16_t https_port);

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_REDIRECT_H_
