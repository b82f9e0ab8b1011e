// connect_command.h: `p2proxy-client connect HOST PORT`: joins standard input and output to a
// TCP stream to a private resource, for ssh's ProxyCommand:
//   ssh -o ProxyCommand="p2proxy-client connect %h %p" vault.example.internal
// It goes through the running client found by its status file: its SOCKS5 proxy (userspace
// mode), or straight to the resource's address, which the TUN routes (TUN mode).
#ifndef P2PROXY_CLIENT_CONNECT_COMMAND_H_
#define P2PROXY_CLIENT_CONNECT_COMMAND_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client_status.pb.h"

namespace p2proxy::client {

// LiveStatus reads |status_file| and checks that its writer still runs and wrote it lately
// (within |max_age|). NotFound / Unavailable say why not, and what to do.
absl::StatusOr<status::ClientStatus> LiveStatus(const std::string& status_file, absl::Duration max_age = absl::Seconds(10));

// ConnectThrough opens a connected TCP socket to |host|:|port| through the client described by
// |s| (blocking, at most |timeout|). Errors name the host and the reason (a SOCKS5 reply code
// spelled out, "not a private name", ...).
absl::StatusOr<int> ConnectThrough(const status::ClientStatus& s, const std::string& host, uint16_t port,
                                   absl::Duration timeout = absl::Seconds(15));

// Pump copies stdin to |fd| and |fd| to stdout until both directions ended (half-closes
// passed on), then closes |fd|. OK on a clean end; the error otherwise.
absl::Status Pump(int fd);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_CONNECT_COMMAND_H_
