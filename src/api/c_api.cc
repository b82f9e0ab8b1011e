// c_api.cc: the C API (include/p2proxy/p2proxy.h) over p2proxy::Client. Nothing here throws
// (the library is built without exceptions reaching it: allocation failure aborts).
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "p2proxy/client.h"
#include "api/convert.h"
#include "p2proxy/p2proxy.h"
#include "p2proxy/server.h"
#include "p2proxy/site.h"
#include "p2proxy/version.h"

struct p2proxy_client {
  std::unique_ptr<p2proxy::Client> client;
};

struct p2proxy_site {
  std::unique_ptr<p2proxy::Site> site;
};

struct p2proxy_listener {
  std::unique_ptr<p2proxy::Listener> listener;
};

struct p2proxy_server {
  std::unique_ptr<p2proxy::Server> server;
};

namespace {

int Report(const p2proxy::Status& st, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) {
    const std::string& m = st.message();
    const size_t n = m.size() < err_len - 1 ? m.size() : err_len - 1;
    std::memcpy(err, m.data(), n);
    err[n] = '\0';
  }
  return static_cast<int>(st.code());
}

int Invalid(const char* what, char* err, size_t err_len) {
  return Report(p2proxy::Status(p2proxy::Code::kInvalidArgument, what), err, err_len);
}

// Copy gives |s| in memory from malloc, for p2proxy_free; null when out of memory.
char* Copy(const std::string& s) {
  char* copy = static_cast<char*>(std::malloc(s.size() + 1));
  if (copy != nullptr) std::memcpy(copy, s.c_str(), s.size() + 1);
  return copy;
}

int OutOfMemory(char* err, size_t err_len) {
  return Report(p2proxy::Status(p2proxy::Code::kResourceExhausted, "out of memory"), err, err_len);
}

std::string PeerJson(const p2proxy::Peer& p) {
  std::string out = "{\"resource\":";
  p2proxy::api::AppendJson(&out, p.resource);
  out += ",\"user\":";
  p2proxy::api::AppendJson(&out, p.user);
  out += ",\"roles\":[";
  for (size_t i = 0; i < p.roles.size(); ++i) {
    if (i > 0) out += ',';
    p2proxy::api::AppendJson(&out, p.roles[i]);
  }
  out += "],\"address\":";
  p2proxy::api::AppendJson(&out, p.address);
  out += ",\"port\":" + std::to_string(p.port) + "}";
  return out;
}

}  // namespace

extern "C" {

const char* p2proxy_version(void) { return P2PROXY_VERSION_STRING; }

int p2proxy_client_start(const char* options_json, p2proxy_client** out, char* err, size_t err_len) {
  if (options_json == nullptr || out == nullptr) return Invalid("options_json and out are required", err, err_len);
  *out = nullptr;
  auto c = p2proxy::Client::StartFromJson(options_json);
  if (!c.ok()) return Report(c.status(), err, err_len);
  *out = new p2proxy_client{std::move(*c)};
  return P2PROXY_OK;
}

int p2proxy_client_dial(p2proxy_client* client, const char* host, uint16_t port, int timeout_ms, int* fd, char* err,
                        size_t err_len) {
  if (client == nullptr || host == nullptr || fd == nullptr) return Invalid("client, host and fd are required", err, err_len);
  *fd = -1;
  auto r = client->client->Dial(host, port, timeout_ms > 0 ? timeout_ms : 15000);
  if (!r.ok()) return Report(r.status(), err, err_len);
  *fd = *r;
  return P2PROXY_OK;
}

int p2proxy_client_dial_udp(p2proxy_client* client, const char* host, uint16_t port, int* fd, char* err,
                            size_t err_len) {
  if (client == nullptr || host == nullptr || fd == nullptr) return Invalid("client, host and fd are required", err, err_len);
  *fd = -1;
  auto r = client->client->DialUdp(host, port);
  if (!r.ok()) return Report(r.status(), err, err_len);
  *fd = *r;
  return P2PROXY_OK;
}

int p2proxy_client_resolve(p2proxy_client* client, const char* host, char* out, size_t out_len, char* err,
                           size_t err_len) {
  if (client == nullptr || host == nullptr || out == nullptr || out_len == 0) {
    return Invalid("client, host and out are required", err, err_len);
  }
  auto r = client->client->Resolve(host);
  if (!r.ok()) return Report(r.status(), err, err_len);
  if (r->size() >= out_len) return Invalid("out_len: too small for the address", err, err_len);
  std::memcpy(out, r->c_str(), r->size() + 1);
  return P2PROXY_OK;
}

int p2proxy_client_status_json(p2proxy_client* client, char** out, char* err, size_t err_len) {
  if (client == nullptr || out == nullptr) return Invalid("client and out are required", err, err_len);
  *out = nullptr;
  auto r = client->client->StatusJson();
  if (!r.ok()) return Report(r.status(), err, err_len);
  *out = Copy(*r);
  return *out == nullptr ? OutOfMemory(err, err_len) : P2PROXY_OK;
}

void p2proxy_client_stop(p2proxy_client* client) {
  if (client != nullptr) client->client->Stop();
}

void p2proxy_client_free(p2proxy_client* client) { delete client; }

int p2proxy_site_start(const char* options_json, p2proxy_site** out, char* err, size_t err_len) {
  if (options_json == nullptr || out == nullptr) return Invalid("options_json and out are required", err, err_len);
  *out = nullptr;
  auto s = p2proxy::Site::StartFromJson(options_json);
  if (!s.ok()) return Report(s.status(), err, err_len);
  *out = new p2proxy_site{std::move(*s)};
  return P2PROXY_OK;
}

int p2proxy_site_listen(p2proxy_site* site, uint16_t port, p2proxy_listener** out, char* err, size_t err_len) {
  if (site == nullptr || out == nullptr) return Invalid("site and out are required", err, err_len);
  *out = nullptr;
  auto l = site->site->Listen(port);
  if (!l.ok()) return Report(l.status(), err, err_len);
  *out = new p2proxy_listener{std::move(*l)};
  return P2PROXY_OK;
}

int p2proxy_site_status_json(p2proxy_site* site, char** out, char* err, size_t err_len) {
  if (site == nullptr || out == nullptr) return Invalid("site and out are required", err, err_len);
  *out = nullptr;
  auto r = site->site->StatusJson();
  if (!r.ok()) return Report(r.status(), err, err_len);
  *out = Copy(*r);
  return *out == nullptr ? OutOfMemory(err, err_len) : P2PROXY_OK;
}

void p2proxy_site_stop(p2proxy_site* site) {
  if (site != nullptr) site->site->Stop();
}

void p2proxy_site_free(p2proxy_site* site) { delete site; }

int p2proxy_listener_accept(p2proxy_listener* listener, int timeout_ms, int* fd, char** peer_json, char* err,
                            size_t err_len) {
  if (listener == nullptr || fd == nullptr) return Invalid("listener and fd are required", err, err_len);
  *fd = -1;
  if (peer_json != nullptr) *peer_json = nullptr;
  auto c = listener->listener->Accept(timeout_ms);
  if (!c.ok()) return Report(c.status(), err, err_len);
  if (peer_json != nullptr) {
    *peer_json = Copy(PeerJson(c->peer));
    if (*peer_json == nullptr) {
      ::close(c->fd);
      return OutOfMemory(err, err_len);
    }
  }
  *fd = c->fd;
  return P2PROXY_OK;
}

int p2proxy_listener_fd(p2proxy_listener* listener) { return listener == nullptr ? -1 : listener->listener->fd(); }

void p2proxy_listener_close(p2proxy_listener* listener) {
  if (listener != nullptr) listener->listener->Close();
}

void p2proxy_listener_free(p2proxy_listener* listener) { delete listener; }

int p2proxy_server_init(const char* options_json, char** summary, char* err, size_t err_len) {
  if (options_json == nullptr) return Invalid("options_json is required", err, err_len);
  if (summary != nullptr) *summary = nullptr;
  auto r = p2proxy::Server::InitFromJson(options_json);
  if (!r.ok()) return Report(r.status(), err, err_len);
  if (summary != nullptr) {
    *summary = Copy(*r);
    if (*summary == nullptr) return OutOfMemory(err, err_len);
  }
  return P2PROXY_OK;
}

int p2proxy_server_start(const char* options_json, p2proxy_server** out, char* err, size_t err_len) {
  if (options_json == nullptr || out == nullptr) return Invalid("options_json and out are required", err, err_len);
  *out = nullptr;
  auto s = p2proxy::Server::StartFromJson(options_json);
  if (!s.ok()) return Report(s.status(), err, err_len);
  *out = new p2proxy_server{std::move(*s)};
  return P2PROXY_OK;
}

int p2proxy_server_admin(p2proxy_server* server, const char* const* args, size_t nargs, int* exit_code, char** out,
                         char** err_out, char* err, size_t err_len) {
  if (server == nullptr || exit_code == nullptr || (args == nullptr && nargs > 0)) {
    return Invalid("server, args and exit_code are required", err, err_len);
  }
  if (nargs > 4096) return Invalid("nargs: at most 4096 words", err, err_len);
  *exit_code = -1;
  if (out != nullptr) *out = nullptr;
  if (err_out != nullptr) *err_out = nullptr;
  std::vector<std::string> words;
  words.reserve(nargs);
  for (size_t i = 0; i < nargs; ++i) {
    if (args[i] == nullptr) return Invalid("args: a NULL word", err, err_len);
    words.emplace_back(args[i]);
  }
  auto r = server->server->Admin(words);
  if (!r.ok()) return Report(r.status(), err, err_len);
  if (out != nullptr && (*out = Copy(r->out)) == nullptr) return OutOfMemory(err, err_len);
  if (err_out != nullptr && (*err_out = Copy(r->err)) == nullptr) {
    if (out != nullptr) {
      std::free(*out);
      *out = nullptr;
    }
    return OutOfMemory(err, err_len);
  }
  *exit_code = r->exit_code;
  return P2PROXY_OK;
}

void p2proxy_server_stop(p2proxy_server* server) {
  if (server != nullptr) server->server->Stop();
}

void p2proxy_server_free(p2proxy_server* server) { delete server; }

void p2proxy_free(void* p) { std::free(p); }

}  // extern "C"
