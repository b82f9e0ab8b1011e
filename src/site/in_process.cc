// in_process.cc: InProcessTargets (in_process.h).
#include "site/in_process.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_text.h"

namespace p2proxy::site {

absl::Status InProcessTargets::Listen(uint16_t port, Accept accept) {
  if (port == 0) return absl::InvalidArgumentError("port: 0 is not a port");
  if (listeners_.count(port) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("port ", port, " already has an in-process listener"));
  }
  if (listeners_.size() >= kMaxListeners) {
    return absl::ResourceExhaustedError(absl::StrCat("at most ", kMaxListeners, " in-process listeners"));
  }
  listeners_.emplace(port, std::move(accept));
  return absl::OkStatus();
}

void InProcessTargets::Unlisten(uint16_t port) { listeners_.erase(port); }

absl::StatusOr<std::unique_ptr<net::TcpStream>> InProcessTargets::Connect(net::Loop& loop, uint16_t port,
                                                                          const InProcessPeer& peer) {
  auto it = listeners_.find(port);
  if (it == listeners_.end()) {
    return absl::UnavailableError(absl::StrCat("no in-process listener on port ", port,
                                               " (the embedding program has not called Listen)"));
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("socketpair: ", base::ErrnoText(errno)));
  }
  auto mine = net::TcpStream::Adopt(loop, sv[0]);  // owns sv[0], also on error
  if (!mine.ok()) {
    ::close(sv[1]);
    return mine.status();
  }
  ++handed_;
  it->second(sv[1], peer);
  return mine;
}

}  // namespace p2proxy::site
