// The path-rule policy end to end over loopback, as the site wires it: a client (raw HTTP/1.1,
// or an nghttp2 session for HTTP/2) -> H1ServerConnection / H2ServerConnection ->
// ReverseProxy whose authorize runs CheckRequest -> UpstreamPool -> an app (another
// H1ServerConnection) that records every request target it receives. Bypass spellings of a
// denied "/admin" must be answered 400 or 403 without reaching the app, and what does reach it
// must be the canonical target.
#include <catch2/catch.hpp>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "h1_test_util.h"
#include "http/access.h"
#include "http/h2_server.h"
#include "http/reverse_proxy.h"

using namespace p2proxy;
using namespace p2proxy::http;
using namespace p2proxy::http::testing;

namespace {

// ProxyRouter sends every request through the proxy with one context.
class ProxyRouter : public Router {
 public:
  ProxyRouter(ReverseProxy& proxy, ProxyContext& ctx) : proxy_(proxy), ctx_(ctx) {}
  std::unique_ptr<ExchangeHandler> OnRequest(Exchange& ex) override { return proxy_.Handle(ex, ctx_); }

 private:
  ReverseProxy& proxy_;
  ProxyContext& ctx_;
};

// Site is the site's request path in miniature: an https resource's policy, the proxy whose
// authorize decides each request as site/https_session.cc does, and the app behind it.
struct Site {
  explicit Site(bool case_insensitive) : upstream(loop, app) {
    policy.grant.users = {"*"};
    policy.paths.push_back({"/admin", {{}, {"admin"}}});
    policy.case_insensitive_paths = case_insensitive;
    ctx.authorize = [this](const RequestHead& head) {
      AccessDecision d = CheckRequest(policy, who, head.method, head.path);
      Authorization a;
      if (d.allowed) {
        a.target = std::move(d.target);
        return a;
      }
      a.status = d.bad_request ? 400 : 403;
      a.reason = std::move(d.reason);
      return a;
    };
    ctx.on_request_done = [this](const RequestRecord& r) { records.push_back(r); };
    ReverseProxyOptions opts;
    opts.upstream = upstream.address();
    proxy = std::make_unique<ReverseProxy>(loop, clock, opts, nullptr);
    router = std::make_unique<ProxyRouter>(*proxy, ctx);
  }
  ~Site() {
    router.reset();
    proxy.reset();
    for (int i = 0; i < 4; ++i) loop.RunOnce(false);
  }

  // AppTargets: every request target the app received, in order.
  std::vector<std::string> AppTargets() const {
    std::vector<std::string> out;
    for (const RequestHead& r : app.log.requests) out.push_back(r.path);
    return out;
  }

  net::Loop loop;
  base::FakeClock clock;
  AppRouter app;
  TestServer upstream;
  AccessPolicy policy;
  Identity who{"BBBB", "bob", {"dev"}};  // not an admin
  ProxyContext ctx;
  std::vector<RequestRecord> records;
  std::unique_ptr<ReverseProxy> proxy;
  std::unique_ptr<ProxyRouter> router;
};

// Attempt is one request target and the status the client must get (200: it reaches the app
// as |forwarded|; kReset: HTTP/2 resets the stream before any handler exists).
constexpr int kReset = -1;
struct Attempt {
  std::string target;
  int status;
  std::string forwarded;
};

// Attempts: forms that map onto /admin in some app, and benign forms that must pass.
std::vector<Attempt> Attempts(bool case_insensitive) {
  std::vector<Attempt> a = {
      {"/admin/panel", 403, ""},
      {"/admin;x/panel", 403, ""},
      {"/admin;/panel", 403, ""},
      {"/admin;jsessionid=1", 403, ""},
      {"/x/..;/admin/panel", 403, ""},
      {"/public/../admin/panel", 403, ""},
      {"/%61dmin/panel", 403, ""},
      {"//admin//panel", 403, ""},
      {"/admin.json", 403, ""},
      {"/admin%2Fpanel", 400, ""},
      {"/admin%2fpanel", 400, ""},
      {"/admin%5Cpanel", 400, ""},
      {"/x/..%5cadmin", 400, ""},
      {"/admin%3Bx/panel", 400, ""},
      {"/admin%00", 400, ""},
      {"/%2561dmin", 400, ""},
      {"/%u0061dmin", 400, ""},
      {"/%c0%afadmin", 400, ""},
      {"/../admin", 400, ""},
      {"/admin%zz", 400, ""},
      // Benign: forwarded canonically.
      {"/", 200, "/"},
      {"/public;v=1/page?q=1;2&r=%2F", 200, "/public/page?q=1;2&r=%2F"},
      {"/a/./b/../c/", 200, "/a/c/"},
      {"/%7euser/caf%c3%a9", 200, "/~user/caf%C3%A9"},
      {"/administrator", 200, "/administrator"},
  };
  if (case_insensitive) {
    a.push_back({"/Admin/panel", 403, ""});
    a.push_back({"/ADMIN;x", 403, ""});
    a.push_back({"/%41dmin", 403, ""});
    a.push_back({"/admin./panel", 400, ""});
    a.push_back({"/adm%C4%B1n", 400, ""});
  } else {
    a.push_back({"/Admin/panel", 200, "/Admin/panel"});
  }
  return a;
}

std::vector<std::string> Forwarded(const std::vector<Attempt>& attempts) {
  std::vector<std::string> out;
  for (const Attempt& a : attempts) {
    if (a.status == 200) out.push_back(a.forwarded);
  }
  return out;
}

// H2Client is a bare nghttp2 client session over a TcpStream: submit requests, read statuses.
class H2Client : public net::StreamHandler {
 public:
  struct Response {
    int status = 0;
    bool closed = false;
    uint32_t error_code = 0;
  };

  explicit H2Client(std::unique_ptr<net::TcpStream> tcp) : tcp_(std::move(tcp)) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &OnHeader);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &OnStreamClose);
    nghttp2_session_client_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
    tcp_->SetHandler(this);
  }
  ~H2Client() override {
    tcp_.reset();
    nghttp2_session_del(session_);
  }

  int32_t Get(const std::string& path) {
    const std::vector<Header> fields = {
        {":method", "GET"}, {":scheme", "https"}, {":authority", "app.test"}, {":path", path}};
    std::vector<nghttp2_nv> nva;
    for (const Header& h : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(), h.value.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), nullptr, this);
    if (id > 0) responses[id];
    Flush();
    return id;
  }
  void Flush() {
    std::vector<uint8_t> out;
    for (;;) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      out.insert(out.end(), data, data + n);
    }
    if (!out.empty()) tcp_->WriteOwned(std::move(out));
  }
  void OnData(base::ByteSpan data) override {
    if (nghttp2_session_mem_recv(session_, data.data(), data.size()) < 0) failed = true;
    Flush();
  }
  void OnEnd() override { failed = true; }
  void OnError(const absl::Status&) override { failed = true; }

  std::map<int32_t, Response> responses;
  bool failed = false;

 private:
  static H2Client* Self(void* p) { return static_cast<H2Client*>(p); }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (std::string_view(reinterpret_cast<const char*>(name), namelen) == ":status") {
      Self(user_data)->responses[frame->hd.stream_id].status =
          std::stoi(std::string(reinterpret_cast<const char*>(value), valuelen));
    }
    return 0;
  }
  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data) {
    H2Client::Response& r = Self(user_data)->responses[id];
    r.closed = true;
    r.error_code = error_code;
    return 0;
  }

  std::unique_ptr<net::TcpStream> tcp_;
  nghttp2_session* session_ = nullptr;
};

// H2Front serves each accepted connection with an H2ServerConnection over the site's router.
struct H2Front {
  explicit H2Front(Site& site) : site(site) {
    auto l = net::TcpListener::Listen(site.loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                      [this](std::unique_ptr<net::TcpStream> s) {
                                        ConnectionInfo info;
                                        info.peer_address = "127.0.0.1";
                                        info.tls = true;
                                        info.alpn = "h2";
                                        conns.push_back(std::make_unique<H2ServerConnection>(
                                            this->site.loop, std::move(s), info, *this->site.router, ServerLimits(),
                                            [] {}));
                                        conns.back()->Start();
                                      });
    REQUIRE(l.ok());
    listener = std::move(*l);
  }
  ~H2Front() {
    conns.clear();
    for (int i = 0; i < 4; ++i) site.loop.RunOnce(false);
  }
  Site& site;
  std::unique_ptr<net::TcpListener> listener;
  std::vector<std::unique_ptr<H2ServerConnection>> conns;
};

// RunH1 sends each attempt on its own connection (a 400 from the parser closes one) and checks
// the status the client got.
void RunH1(Site& site, const std::vector<Attempt>& attempts) {
  TestServer front(site.loop, *site.router);
  for (const Attempt& a : attempts) {
    INFO("HTTP/1.1 target: " << a.target);
    RawClient c(site.loop, front.address());
    c.Send("GET " + a.target + " HTTP/1.1\r\nHost: app.test\r\n\r\n");
    REQUIRE(c.WaitResponses(1));
    CHECK(c.reader.responses[0].status == a.status);
  }
}

}  // namespace

TEST_CASE("Path policy over HTTP/1.1: bypass spellings never reach the app, allowed targets arrive canonical") {
  for (const bool ci : {false, true}) {
    INFO("case_insensitive_paths: " << ci);
    Site site(ci);
    const std::vector<Attempt> attempts = Attempts(ci);
    RunH1(site, attempts);
    CHECK(site.AppTargets() == Forwarded(attempts));
    // Refusals are recorded with their reason, for the audit log.
    REQUIRE(site.loop.RunUntil([&] { return site.records.size() == attempts.size(); }, absl::Seconds(10)));
    for (const RequestRecord& r : site.records) {
      if (r.allowed) continue;
      INFO(r.path);
      CHECK((r.status == 400 || r.status == 403));
      CHECK_FALSE(r.error.empty());
      if (r.status == 400) CHECK(r.error.rfind("bad request target: ", 0) == 0);
      if (r.status == 403) CHECK(r.error == "user 'bob' is not allowed under /admin");
    }
    CHECK(site.proxy->counters().bad_requests > 0);
  }
}

TEST_CASE("Path policy over HTTP/1.1: an absolute-form target is checked as its path") {
  Site site(false);
  RunH1(site, {{"http://app.test/admin;x/panel", 403, ""},
               {"https://app.test/x/..;/admin", 403, ""},
               {"http://app.test/admin%2Fx", 400, ""},
               {"http://app.test/ok;p?y=1", 200, "/ok?y=1"}});
  CHECK(site.AppTargets() == std::vector<std::string>{"/ok?y=1"});
}

TEST_CASE("Path policy over HTTP/2: bypass spellings in :path never reach the app, allowed ones arrive canonical") {
  for (const bool ci : {false, true}) {
    INFO("case_insensitive_paths: " << ci);
    Site site(ci);
    H2Front front(site);
    std::unique_ptr<net::TcpStream> tcp;
    net::TcpStream::Connect(site.loop, front.listener->local_address(),
                            [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
                              REQUIRE(s.ok());
                              tcp = std::move(*s);
                            });
    REQUIRE(site.loop.RunUntil([&] { return tcp != nullptr; }, absl::Seconds(10)));
    H2Client client(std::move(tcp));
    std::vector<Attempt> attempts = Attempts(ci);
    // HTTP/2 carries what an HTTP/1.1 request line cannot. A raw backslash gets to the policy;
    // nghttp2 itself resets (kReset) a :path that is not origin-form, "*" for GET, or one with
    // a space.
    attempts.push_back({"/admin\\panel", 400, ""});
    attempts.push_back({"/x/..\\admin", 400, ""});
    attempts.push_back({"http://app.test/admin", kReset, ""});
    attempts.push_back({"admin", kReset, ""});
    attempts.push_back({"*", kReset, ""});
    attempts.push_back({"/admin panel", kReset, ""});
    std::vector<int32_t> ids;
    for (const Attempt& a : attempts) ids.push_back(client.Get(a.target));
    REQUIRE(site.loop.RunUntil(
        [&] {
          for (int32_t id : ids) {
            if (!client.responses[id].closed) return client.failed;
          }
          return true;
        },
        absl::Seconds(20)));
    REQUIRE_FALSE(client.failed);
    for (size_t i = 0; i < attempts.size(); ++i) {
      INFO("HTTP/2 :path: " << attempts[i].target);
      const H2Client::Response& r = client.responses[ids[i]];
      if (attempts[i].status == kReset) {
        CHECK(r.status == 0);
        CHECK(r.error_code == NGHTTP2_PROTOCOL_ERROR);
      } else {
        CHECK(r.status == attempts[i].status);
      }
    }
    // Streams finish in any order; the app must have seen exactly the canonical targets.
    std::vector<std::string> got = site.AppTargets();
    std::vector<std::string> want = Forwarded(attempts);
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    CHECK(got == want);
  }
}
