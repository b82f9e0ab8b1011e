/* p2proxy.h: libp2proxy's C API: a client (dial private resources), a site (serve them from
 * this program) and the control server. Opaque handles, thread-safe, no C++ exception crosses it.
 * Every call that can fail returns 0 (P2PROXY_OK) or a status code (the numbers of
 * p2proxy::Code: 3 invalid argument, 4 deadline exceeded, 5 not found, 9 failed precondition,
 * 14 unavailable, ...), and writes a message a person can act on into |err| (|err_len| bytes,
 * NUL-terminated, cut if longer; |err| may be NULL). Connections are file descriptors: a
 * connected stream socket the caller owns, so select, poll, asyncio and
 * socket.socket(fileno=...) work on them.
 *
 * Handles may be used from several threads at once. Free a handle only once no other thread is
 * inside a call on it: the _stop/_close functions wake calls blocked in another thread (a
 * listener's accept returns 1 at once; a client's dial at its timeout), then wait for them to
 * return before calling _free. (The Python module does this for you.)
 *
 *   p2proxy_client* c;
 *   char err[512];
 *   if (p2proxy_client_start("{\"state_dir\": \"/var/lib/myapp/p2proxy\"}", &c, err, sizeof err)) ...
 *   int fd;
 *   if (p2proxy_client_dial(c, "vault.example.internal", 443, 15000, &fd, err, sizeof err)) ...
 *   ... read(fd) / write(fd) ...; close(fd);
 *   p2proxy_client_free(c);
 */
#ifndef P2PROXY_P2PROXY_H_
#define P2PROXY_P2PROXY_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define P2PROXY_OK 0

/* p2proxy_version: "MAJOR.MINOR.PATCH" of the library. */
const char* p2proxy_version(void);

typedef struct p2proxy_client p2proxy_client;

/* p2proxy_client_start: a client from |options_json| (the fields of p2proxy::ClientOptions in
 * client.h: state_dir, server, token, name, socks5, http_proxy, forwards, status_file,
 * log_level, start_timeout_ms), running on a thread of its own. *out is set on success. */
int p2proxy_client_start(const char* options_json, p2proxy_client** out, char* err, size_t err_len);
/* p2proxy_client_dial: a connected stream socket to |host|:|port| through the overlay in *fd. */
int p2proxy_client_dial(p2proxy_client* client, const char* host, uint16_t port, int timeout_ms, int* fd,
                        char* err, size_t err_len);
/* p2proxy_client_dial_udp: a UDP flow to |host|:|port| as a connected SOCK_SEQPACKET socket in
 * *fd: each message written is one datagram to the resource, each datagram back one message
 * (dial.h). */
int p2proxy_client_dial_udp(p2proxy_client* client, const char* host, uint16_t port, int* fd, char* err,
                            size_t err_len);
/* p2proxy_client_resolve: the overlay address of a private name, written to |out| (|out_len|
 * bytes, NUL-terminated). */
int p2proxy_client_resolve(p2proxy_client* client, const char* host, char* out, size_t out_len, char* err,
                           size_t err_len);
/* p2proxy_client_status_json: the client's status as JSON in *out, to be freed with
 * p2proxy_free. */
int p2proxy_client_status_json(p2proxy_client* client, char** out, char* err, size_t err_len);
/* p2proxy_client_stop: bring the client down (idempotent); the handle stays valid until freed. */
void p2proxy_client_stop(p2proxy_client* client);
/* p2proxy_client_free: stop if needed, then release the handle. NULL is allowed. */
void p2proxy_client_free(p2proxy_client* client);

typedef struct p2proxy_site p2proxy_site;
typedef struct p2proxy_listener p2proxy_listener;

/* p2proxy_site_start: a site from |options_json| (the fields of p2proxy::SiteOptions in site.h:
 * state_dir, server, token, name, listen_port, audit_log, log_level, start_timeout_ms),
 * running on a thread of its own. It serves its resources whose target is "in-process" through
 * the listeners below. *out is set on success. */
int p2proxy_site_start(const char* options_json, p2proxy_site** out, char* err, size_t err_len);
/* p2proxy_site_listen: take the connections to the site's in-process resources on |port| (443
 * for an https resource: requests arrive as plain HTTP/1.1 with X-P2proxy-User/-Roles). */
int p2proxy_site_listen(p2proxy_site* site, uint16_t port, p2proxy_listener** out, char* err, size_t err_len);
/* p2proxy_site_status_json: the site's status as JSON in *out (node, server connection,
 * resources), to be freed with p2proxy_free. */
int p2proxy_site_status_json(p2proxy_site* site, char** out, char* err, size_t err_len);
/* p2proxy_site_stop: bring the site down (idempotent); its listeners' accepts then fail with 1
 * (cancelled). The handle stays valid until freed. */
void p2proxy_site_stop(p2proxy_site* site);
/* p2proxy_site_free: stop if needed, then release the handle. NULL is allowed. Listeners stay
 * valid until freed. */
void p2proxy_site_free(p2proxy_site* site);

/* p2proxy_listener_accept: the next connection, waiting at most |timeout_ms| (negative: no
 * limit, 0: none), as a connected stream socket in *fd that the caller closes; if |peer_json| is
 * not NULL, who it comes from in *peer_json ({"resource", "user", "roles", "address", "port"};
 * free with p2proxy_free). 4: none in time; 1: the listener is closed or the site stopped. */
int p2proxy_listener_accept(p2proxy_listener* listener, int timeout_ms, int* fd, char** peer_json, char* err,
                            size_t err_len);
/* p2proxy_listener_fd: a descriptor that is readable while a connection waits to be accepted or
 * once the listener is closed (for poll, select, asyncio's add_reader). Owned by the listener. */
int p2proxy_listener_fd(p2proxy_listener* listener);
/* p2proxy_listener_close: stop taking connections on the port (idempotent). */
void p2proxy_listener_close(p2proxy_listener* listener);
/* p2proxy_listener_free: close if needed, then release the handle. NULL is allowed. */
void p2proxy_listener_free(p2proxy_listener* listener);

typedef struct p2proxy_server p2proxy_server;

/* p2proxy_server_init: make a new server state dir from |options_json| (the fields of
 * p2proxy::ServerOptions in server.h: state_dir, listen, public_address, wireguard_listen,
 * wireguard_endpoint, zones, node_range, resource_range, admin_socket, log_level); a summary
 * for people in *summary (free with p2proxy_free; may be NULL). */
int p2proxy_server_init(const char* options_json, char** summary, char* err, size_t err_len);
/* p2proxy_server_start: the control server from its state dir, on a thread of its own. */
int p2proxy_server_start(const char* options_json, p2proxy_server** out, char* err, size_t err_len);
/* p2proxy_server_admin: one admin command (the words after `p2proxy-server admin`, |nargs| of
 * them); its exit status in *exit_code (0 done, 1 refused, 2 usage) and its standard output and
 * error in *out and *err_out (free both with p2proxy_free; either may be NULL). The return value
 * is non-zero only when the command could not run (the server stopped). */
int p2proxy_server_admin(p2proxy_server* server, const char* const* args, size_t nargs, int* exit_code, char** out,
                         char** err_out, char* err, size_t err_len);
/* p2proxy_server_stop: stop serving (idempotent). p2proxy_server_free: stop, then release. */
void p2proxy_server_stop(p2proxy_server* server);
void p2proxy_server_free(p2proxy_server* server);

/* p2proxy_free: release memory the library returned (status JSON). NULL is allowed. */
void p2proxy_free(void* p);

#ifdef __cplusplus
}
#endif

#endif /* P2PROXY_P2PROXY_H_ */
