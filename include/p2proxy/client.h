// client.h: a p2proxy client inside your program. It joins the overlay as a device of its
// user (enrolled once with a token, then from its state dir), runs on its own thread, resolves
// private names and dials private resources, all in userspace: no TUN, no root.
//
//   p2proxy::ClientOptions o;
//   o.state_dir = "/var/lib/myapp/p2proxy";
//   o.server = "ctl.example.com:443";
//   o.token = token_from_admin;  // first start only
//   auto client = p2proxy::Client::Start(o);
//   if (!client.ok()) { fprintf(stderr, "%s\n", client.status().message().c_str()); ... }
//   auto fd = (*client)->Dial("vault.example.internal", 443);  // a connected socket
//
// Thread-safe: every method may be called from any thread. Stop (or destruction) ends every
// connection the client carries.
#ifndef P2PROXY_CLIENT_H_
#define P2PROXY_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "p2proxy/dial.h"
#include "p2proxy/status.h"

namespace p2proxy {

struct ClientOptions {
  // state_dir: where the client keeps its WireGuard key, device certificate and last snapshot
  // (0700/0600). Required.
  std::string state_dir;
  // server: the control server, HOST:PORT (as `p2proxy-server admin token create` prints it);
  // token: the one-time device token. Both needed to enroll the first time; afterwards the
  // state dir is enough.
  std::string server;
  std::string token;
  std::string name;  // the device's name at enrollment ("": the server's choice)
  // Local proxies for other programs, IP:PORT on loopback, "" for none: a SOCKS5 proxy, an
  // HTTP CONNECT proxy, and forwards "[LISTEN_IP:]LISTEN_PORT:HOST:PORT".
  std::string socks5;
  std::string http_proxy;
  std::vector<std::string> forwards;
  // status_file: a JSON status file, rewritten every second ("": none).
  std::string status_file;
  // log_level: debug, info, warn or error; logs go to standard error.
  std::string log_level = "warn";
  // start_timeout_ms: how long Start waits for enrollment or the state dir to load.
  int start_timeout_ms = 60000;
};

class Client {
 public:
  // Start enrolls (first time) or loads the state dir and brings the client up on a thread of
  // its own. It returns once the server's current configuration arrived; with the server away
  // it works from its last snapshot (after waiting at most 5 s for the server).
  static Result<std::unique_ptr<Client>> Start(const ClientOptions& options);
  // StartFromJson is Start with the options as a JSON object whose fields are the names above
  // ({"state_dir": "...", "server": "...", "forwards": ["2222:ssh.example.internal:22"]}).
  static Result<std::unique_ptr<Client>> StartFromJson(const std::string& json);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Dial connects to |host| (a private name or an overlay IPv4 address) at |port| and returns
  // a connected stream socket (a file descriptor the caller owns and closes): bytes written to
  // it reach the resource, bytes from the resource are read from it, shutdown(SHUT_WR) is
  // passed on. Fails with kNotFound for a name that is not private, kUnavailable when the
  // resource refuses, kDeadlineExceeded after |timeout_ms|.
  Result<int> Dial(const std::string& host, uint16_t port, int timeout_ms = 15000);
  // DialUdp opens a UDP flow to |host|:|port| (a udp resource) and returns a connected
  // SOCK_SEQPACKET socket the caller owns: each message written is one datagram to the
  // resource, each datagram from it one message to read (dial.h). Closing it ends the flow.
  // At most 1,024 flows at once (kResourceExhausted).
  Result<int> DialUdp(const std::string& host, uint16_t port);
  // Resolve gives the overlay address of a private name ("100.96.128.2").
  Result<std::string> Resolve(const std::string& host);
  // StatusJson is the client's status (the status file's content: mode, server connection,
  // peers with their endpoints, resources and the site each uses).
  Result<std::string> StatusJson();
  // Stop brings the client down; later calls fail with kFailedPrecondition. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2proxy

#endif  // P2PROXY_CLIENT_H_
