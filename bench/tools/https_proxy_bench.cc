// https_proxy_bench: the site's HTTPS path (ClientHello peek, TLS, HTTP/1.1 or HTTP/2 by ALPN,
// access check per request, reverse proxy to an upstream, audit line per request) served on a
// loopback TCP socket instead of the overlay, so bench/https_rps.sh can load it with h2load
// beside nginx. A benchmark harness only: the real site never listens on the host.
//
//   https_proxy_bench --listen 127.0.0.1:18443 --upstream 127.0.0.1:18080 --cert C --key K
//                     [--audit FILE]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "base/address.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/malloc_tune.h"
#include "net/loop.h"
#include "net/signal.h"
#include "net/tcp.h"
#include "site/https_session.h"
#include "site/site_config.h"

using namespace p2proxy;

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "https_proxy_bench: %s\nusage: https_proxy_bench --listen ADDR:PORT --upstream ADDR:PORT "
               "--cert CHAIN.pem --key KEY.pem [--audit FILE|-]\n",
               why);
  return 2;
}

std::string ReadFile(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  p2proxy::base::TuneMallocForThroughput();
  std::map<std::string, std::string> args = {{"--audit", "/dev/null"}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const char* need : {"--listen", "--upstream", "--cert", "--key"}) {
    if (!args.count(need)) return Usage((std::string(need) + " is required").c_str());
  }
  auto listen = base::SocketAddress::Parse(args["--listen"]);
  auto upstream = base::SocketAddress::Parse(args["--upstream"]);
  if (!listen.ok() || !upstream.ok()) return Usage("bad --listen or --upstream");
  base::SetLogLevel(base::LogLevel::kWarn);
  signal(SIGPIPE, SIG_IGN);

  net::Loop loop;
  site::SiteResource resource;
  resource.name = "bench";
  resource.protocol = site::Protocol::kHttps;
  resource.target = *upstream;
  resource.access.grant.users = {"bench"};
  resource.access.paths.push_back({"/admin", {{}, {"admin"}}});

  site::HttpsResource h;
  h.config = &resource;
  auto cert = tls::ServerCertificate::FromPem(ReadFile(args["--cert"]), ReadFile(args["--key"]), tls::ServerTlsOptions{});
  if (!cert.ok()) return Usage(std::string(cert.status().message()).c_str());
  h.certs.SetDefault(*cert);
  http::ReverseProxyOptions popts;
  popts.upstream = *upstream;
  h.proxy = std::make_unique<http::ReverseProxy>(loop, base::RealClock::Get(), popts,
                                                 [](std::unique_ptr<net::Stream>, std::vector<uint8_t>,
                                                    std::unique_ptr<net::Stream>, std::vector<uint8_t>) {});
  auto audit = http::AuditLog::Open(loop, args["--audit"]);
  if (!audit.ok()) return Usage(std::string(audit.status().message()).c_str());

  std::map<site::HttpsSession*, std::unique_ptr<site::HttpsSession>> sessions;
  auto l = net::TcpListener::Listen(loop, *listen, [&](std::unique_ptr<net::TcpStream> conn) {
    site::PeerContext peer;
    peer.identity = http::Identity{"bench-key", "bench", {"dev"}};
    peer.address = "127.0.0.1";
    auto s = std::make_unique<site::HttpsSession>(loop, h, **audit, site::HttpsSession::Mode::kHttps, std::move(conn),
                                                  peer, [&](site::HttpsSession* done) {
                                                    auto it = sessions.find(done);
                                                    if (it == sessions.end()) return;
                                                    loop.DeferDelete(std::move(it->second));
                                                    sessions.erase(it);
                                                  });
    site::HttpsSession* raw = s.get();
    sessions.emplace(raw, std::move(s));
    raw->Start();
  });
  if (!l.ok()) return Usage(std::string(l.status().message()).c_str());
  std::fprintf(stderr, "https_proxy_bench: listening on %s, upstream %s\n", args["--listen"].c_str(),
               args["--upstream"].c_str());
  net::SignalWatcher term(loop);
  (void)term.Watch(SIGTERM, [&] {
    sessions.clear();
    loop.Stop();
  });
  loop.Run();
  return 0;
}
