// site.h: a p2proxy site inside your program. The program joins the overlay as a site (enrolled
// once with a site token, then from its state dir) and serves resources itself: a resource
// whose target is "in-process" (`p2proxy-server admin resource add NAME ... --site SITE
// --target in-process`) reaches the program's Listener on the resource's port instead of a LAN
// address. No host port is opened, no LAN target is needed, and the access check (deny by
// default), the audit and, for https resources, TLS with the certificate the server pushed all
// happen in the library before a connection is handed over.
//
//   p2proxy::SiteOptions o;
//   o.state_dir = "/var/lib/myappliance/p2proxy";
//   o.server = "ctl.example.com:443";
//   o.token = site_token;  // first start only
//   auto site = p2proxy::Site::Start(o);
//   auto listener = (*site)->Listen(443);  // an https resource: plain HTTP arrives here
//   for (;;) {
//     auto conn = (*listener)->Accept();
//     if (!conn.ok()) break;
//     ... read/write conn->fd, then close it; conn->peer says who (tcp) ...
//   }
//
// Thread-safe: every method may be called from any thread. Stop (or destruction) ends every
// connection the site carries and makes pending and later Accepts fail with kCancelled.
#ifndef P2PROXY_SITE_H_
#define P2PROXY_SITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "p2proxy/dial.h"
#include "p2proxy/status.h"

namespace p2proxy {

struct SiteOptions {
  // state_dir: where the site keeps its WireGuard key, node certificate and last snapshot
  // (0700/0600). Required.
  std::string state_dir;
  // server: the control server, HOST:PORT; token: the one-time site token (`p2proxy-server
  // admin token create site NAME`). Both needed to enroll; afterwards the state dir is enough.
  std::string server;
  std::string token;
  std::string name;  // the site's name at enrollment ("": the token's)
  // listen_port: the WireGuard UDP port (0: an ephemeral one; the site only dials out).
  uint16_t listen_port = 0;
  // audit_log: where the site also writes its audit log locally: a file, or "-" for standard
  // output; "" for nowhere (events always go to the server).
  std::string audit_log;
  // log_level: debug, info, warn or error; logs go to standard error.
  std::string log_level = "warn";
  // start_timeout_ms: how long Start waits for enrollment or the state dir to load.
  int start_timeout_ms = 60000;
};

class Listener {
 public:
  // kMaxPending: connections waiting for Accept beyond this are refused (closed at once).
  static constexpr int kMaxPending = 128;

  ~Listener();  // Close
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  uint16_t port() const;
  // Accept waits for the next connection, at most |timeout_ms| (negative: no limit; 0: only
  // one waiting now). kDeadlineExceeded when none came in time; kCancelled once the listener
  // is closed or the site stopped.
  Result<Connection> Accept(int timeout_ms = -1);
  // fd is readable while a connection waits to be accepted, or once the listener is closed:
  // for poll, select or an event loop (asyncio's add_reader). The listener owns it.
  int fd() const;
  // Close stops taking connections on the port (the site refuses new ones, as for a target
  // that is down); connections not yet accepted are closed. Idempotent.
  void Close();

  struct Impl;
  explicit Listener(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

class Site {
 public:
  // Start enrolls (first time) or loads the state dir and brings the site up on a thread of its
  // own. It serves from its last snapshot even while the server is away.
  static Result<std::unique_ptr<Site>> Start(const SiteOptions& options);
  // StartFromJson is Start with the options as a JSON object whose fields are the names above.
  static Result<std::unique_ptr<Site>> StartFromJson(const std::string& json);
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  // Listen takes the connections to this site's in-process resources on |port| (the resource's
  // port: 443 for an https resource, whose requests arrive as plain HTTP/1.1). One listener
  // per port: kAlreadyExists for a second.
  Result<std::unique_ptr<Listener>> Listen(uint16_t port);
  // StatusJson: the site's node id and address, whether the server is connected, the
  // snapshot version, and the resources it serves (name, address, port, kind, in_process).
  Result<std::string> StatusJson();
  // Stop brings the site down; later calls fail with kFailedPrecondition. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit Site(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2proxy

#endif  // P2PROXY_SITE_H_
