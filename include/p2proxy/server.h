// server.h: the p2proxy control server inside your program: the same role `p2proxy-server`
// runs (enrollment, snapshots pushed to sites and clients, the internal CA and certificates,
// audit intake, its WireGuard interface), on a thread of its own, with the admin commands as a
// method instead of (or as well as) the admin socket.
//
//   p2proxy::ServerOptions o;
//   o.state_dir = "/var/lib/myapp/p2proxy-server";
//   o.public_address = "ctl.example.com:443";
//   if (!p2proxy::Server::IsInitialized(o.state_dir)) {
//     auto summary = p2proxy::Server::Init(o);  // the CA, keys and database, once
//   }
//   auto server = p2proxy::Server::Start(o);
//   auto out = (*server)->Admin({"user", "add", "alice"});  // as `p2proxy-server admin user add alice`
//
// Thread-safe: every method may be called from any thread.
#ifndef P2PROXY_SERVER_H_
#define P2PROXY_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "p2proxy/status.h"

namespace p2proxy {

struct ServerOptions {
  // state_dir: the CA, the control and WireGuard keys (0600) and the database. Required.
  std::string state_dir;
  // listen: the control channel's TCP address (TLS 1.3).
  std::string listen = "0.0.0.0:443";
  // public_address: HOST:PORT as nodes dial the control channel. Required by Init (it goes into
  // the control certificate and every token).
  std::string public_address;
  // wireguard_listen: the UDP address of the server's WireGuard interface; "off" for none.
  std::string wireguard_listen = "0.0.0.0:51820";
  // wireguard_endpoint: HOST:PORT nodes send WireGuard to ("": public_address's host with
  // wireguard_listen's port).
  std::string wireguard_endpoint;
  // zones: the clients' private zones (empty: derived from the resources' domains).
  std::vector<std::string> zones;
  // node_range, resource_range: Init only; the deployment's ranges, IPv4 in canonical form
  // ("": 100.96.0.0/17 and 100.96.128.0/18).
  std::string node_range;
  std::string resource_range;
  // admin_socket: also serve the admin commands on this unix socket (0600) for
  // `p2proxy-server admin --admin_socket=PATH`; "" for none.
  std::string admin_socket;
  // log_level: debug, info, warn or error; logs go to standard error.
  std::string log_level = "warn";
};

// AdminOutput: an admin command's outcome, as `p2proxy-server admin` would print it.
struct AdminOutput {
  int exit_code = 0;   // 0: done; 1: refused (err says why); 2: a usage error
  std::string out;     // what goes to standard output (tables, or JSON with --json)
  std::string err;     // what goes to standard error
};

class Server {
 public:
  // Init makes a new state dir (refuses one that holds a CA already: keys are never
  // overwritten) and returns a summary for people (the CA file, the control pin).
  static Result<std::string> Init(const ServerOptions& options);
  // IsInitialized: whether |state_dir| holds a server's CA (Init was run).
  static bool IsInitialized(const std::string& state_dir);
  // Start loads the state dir and serves on a thread of its own.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // StartFromJson / InitFromJson: the options as a JSON object with the fields above.
  static Result<std::unique_ptr<Server>> StartFromJson(const std::string& json);
  static Result<std::string> InitFromJson(const std::string& json);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Admin runs one admin command: |args| are the words after `p2proxy-server admin`
  // ({"token", "create", "site", "s1"}, {"site", "list", "--json"}). A refused command is an
  // AdminOutput with a non-zero exit code, not a failed Result; the Result fails only when the
  // server is stopped (kFailedPrecondition) or does not answer (kDeadlineExceeded).
  Result<AdminOutput> Admin(const std::vector<std::string>& args);
  // Stop stops serving (nodes keep their last snapshot and reconnect to the next server run).
  // Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2proxy

#endif  // P2PROXY_SERVER_H_
