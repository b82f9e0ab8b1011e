// site_hello.cc: a program that is its own p2proxy site (C++ API). It serves a small page from
// an in-process handler to the overlay: no LAN app, no host port. Give it an https resource
// whose target is in-process, e.g.
//
//   p2proxy-server admin resource add hello --domain hello.example.internal --kind https \
//       --site app1 --target in-process --allow role:staff
//   site_hello '{"state_dir": "/var/lib/hello", "server": "ctl.example.com:443", "token": "p2p1_..."}' 443
//
// The site ends TLS with the certificate the server pushed and checks access; each request
// arrives here as plain HTTP/1.1 with the user in X-P2proxy-User. Stops on SIGINT or SIGTERM.
#include <p2proxy/site.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::atomic<bool> g_stop{false};

// ReadHead reads one request head (up to 16 KiB, 10 s); empty on EOF, error or timeout.
std::string ReadHead(int fd) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return {};
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return {};
    head.append(buf, static_cast<size_t>(n));
  }
  return head;
}

// Header gives the value of |name| (lower case) in |head|, or "".
std::string Header(const std::string& head, const std::string& name) {
  size_t at = 0;
  while ((at = head.find("\r\n", at)) != std::string::npos) {
    at += 2;
    const size_t colon = head.find(':', at);
    const size_t end = head.find("\r\n", at);
    if (colon == std::string::npos || end == std::string::npos || colon > end) continue;
    std::string key = head.substr(at, colon - at);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key != name) continue;
    size_t v = colon + 1;
    while (v < end && head[v] == ' ') ++v;
    return head.substr(v, end - v);
  }
  return {};
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OPTIONS_JSON PORT\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[2]);
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "PORT: '%s' is not 1-65535\n", argv[2]);
    return 2;
  }
  struct sigaction sa = {};
  sa.sa_handler = [](int) { g_stop = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto site = p2proxy::Site::StartFromJson(argv[1]);
  if (!site.ok()) {
    std::fprintf(stderr, "start: %s (code %d)\n", site.status().message().c_str(),
                 static_cast<int>(site.status().code()));
    return 1;
  }
  auto listener = (*site)->Listen(static_cast<uint16_t>(port));
  if (!listener.ok()) {
    std::fprintf(stderr, "listen: %s\n", listener.status().message().c_str());
    return 1;
  }
  std::printf("listening on port %d of the site's in-process resources\n", port);
  std::fflush(stdout);
  int served = 0;
  while (!g_stop) {
    auto conn = (*listener)->Accept(500);
    if (!conn.ok()) {
      if (conn.status().code() == p2proxy::Code::kDeadlineExceeded) continue;
      std::fprintf(stderr, "accept: %s\n", conn.status().message().c_str());
      break;
    }
    const std::string head = ReadHead(conn->fd);
    if (!head.empty()) {
      const std::string user = Header(head, "x-p2proxy-user");
      const std::string roles = Header(head, "x-p2proxy-roles");
      const std::string body = "hello " + (user.empty() ? std::string("(nobody)") : user) + " (roles: " + roles +
                               ") from an in-process handler of " + conn->peer.resource + "\n";
      WriteAll(conn->fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
      std::printf("served %d: %s", ++served, body.c_str());
      std::fflush(stdout);
    }
    close(conn->fd);
  }
  std::printf("stopping after %d requests\n", served);
  return 0;
}
