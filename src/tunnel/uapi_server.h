// uapi_server.h: the WireGuard cross-platform UAPI on a unix socket
// (/var/run/wireguard/NAME.sock), so `wg show NAME` and `wg set NAME ...` work against a
// p2proxy daemon as they do against wireguard-go.
#ifndef P2PROXY_TUNNEL_UAPI_SERVER_H_
#define P2PROXY_TUNNEL_UAPI_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "net/handle.h"
#include "net/loop.h"
#include "wg/uapi.h"

namespace p2proxy::tunnel {

class UapiServer {
 public:
  struct Handler {
    // get returns the device's state for "get=1".
    absl::AnyInvocable<wg::UapiState()> get;
    // set applies a parsed "set=1" request; returns 0 or a positive errno.
    absl::AnyInvocable<int(const wg::UapiSet&)> set;
  };

  // Listen creates |path| (mode 0600, its directory 0755), refusing if another live process
  // serves it; a stale socket file left by a crash is replaced.
  static absl::StatusOr<std::unique_ptr<UapiServer>> Listen(net::Loop& loop, const std::string& path,
                                                            Handler handler);
  // The socket file is removed on destruction.
  ~UapiServer();
  const std::string& path() const { return path_; }

 private:
  struct Conn;
  UapiServer(net::Loop& loop, std::string path, Handler handler);
  void OnConnection();
  void OnData(Conn* c, const char* data, size_t len);
  void CloseConn(Conn* c);

  net::Loop& loop_;
  std::string path_;
  Handler handler_;
  net::UvHandle<uv_pipe_t> pipe_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

}  // namespace p2proxy::tunnel

#endif  // P2PROXY_TUNNEL_UAPI_SERVER_H_
