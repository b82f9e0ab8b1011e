/* p2proxy.h: libp2proxy's C API. Opaque handles, thread-safe, no C++ exception crosses it.
 * Every call that can fail returns 0 (P2PROXY_OK) or a status code (the numbers of
 * p2proxy::Code: 3 invalid argument, 4 deadline exceeded, 5 not found, 9 failed precondition,
 * 14 unavailable, ...), and writes a message a person can act on into |err| (|err_len| bytes,
 * NUL-terminated, cut if longer; |err| may be NULL). Connections are file descriptors: a
 * connected stream socket the caller owns, so select, poll, asyncio and
 * socket.socket(fileno=...) work on them.
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

/* p2proxy_free: release memory the library returned (status JSON). NULL is allowed. */
void p2proxy_free(void* p);

#ifdef __cplusplus
}
#endif

#endif /* P2PROXY_P2PROXY_H_ */
