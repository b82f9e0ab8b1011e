// status_report.h: the running client's status (client_status.proto) and its file: collected
// from the device, the site selector, the local proxies and the control channel; written as
// JSON every second by the daemon; read and printed by `p2proxy-client status`.
#ifndef P2PROXY_CLIENT_STATUS_REPORT_H_
#define P2PROXY_CLIENT_STATUS_REPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client_status.pb.h"
#include "client/local_proxy.h"
#include "client/overlay.h"
#include "client/wg_client.h"

namespace p2proxy::client {

// StatusInputs is what CollectStatus reads; the pointers may be null (no such part runs).
struct StatusInputs {
  WgClient* client = nullptr;
  const LocalProxies* proxies = nullptr;
  const PrivateNames* names = nullptr;
  // The control channel (managed mode).
  bool managed = false;
  std::string server_address;
  bool server_connected = false;
  uint64_t snapshot_version = 0;
  std::string node_id;
  std::string node_name;
  std::string node_address;
  bool uplink_tls = false;  // WireGuard reaches the server over TLS (uplink/server_uplink.h)
};

status::ClientStatus CollectStatus(const StatusInputs& in, absl::Time now);

// StatusJson is |s| as one line of JSON (field names as in client_status.proto).
std::string StatusJson(const status::ClientStatus& s);
// WriteStatusFile replaces |path| (mode 0600) with StatusJson(s) atomically (a temporary file
// renamed over it), so a reader never sees half a file.
absl::Status WriteStatusFile(const std::string& path, const status::ClientStatus& s);
// ReadStatusFile reads a status file (at most 4 MiB). NotFound: no client has written one (not
// running); InvalidArgument: not a status file.
absl::StatusOr<status::ClientStatus> ReadStatusFile(const std::string& path);
// FormatStatus is the table `p2proxy-client status` prints.
std::string FormatStatus(const status::ClientStatus& s, absl::Time now);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_STATUS_REPORT_H_
