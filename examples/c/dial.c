/* dial.c: dial a private resource through an in-process p2proxy client and print what it
 * answers to an HTTP/1.0 request (for a tcp resource in front of a web app).
 *
 *   dial OPTIONS_JSON HOST PORT
 *   dial '{"state_dir": "/tmp/demo-client", "server": "198.18.1.1:443", "token": "p2p1_..."}' \
 *        web.example.internal 80
 */
#include <p2proxy/p2proxy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s OPTIONS_JSON HOST PORT\n", argv[0]);
    return 2;
  }
  char err[512];
  p2proxy_client* client = NULL;
  int rc = p2proxy_client_start(argv[1], &client, err, sizeof err);
  if (rc != P2PROXY_OK) {
    fprintf(stderr, "start: %s (code %d)\n", err, rc);
    return 1;
  }
  int fd = -1;
  rc = p2proxy_client_dial(client, argv[2], (uint16_t)atoi(argv[3]), 15000, &fd, err, sizeof err);
  if (rc != P2PROXY_OK) {
    fprintf(stderr, "dial %s:%s: %s (code %d)\n", argv[2], argv[3], err, rc);
    p2proxy_client_free(client);
    return 1;
  }
  char request[512];
  int n = snprintf(request, sizeof request, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", argv[2]);
  if (write(fd, request, (size_t)n) != n) {
    perror("write");
    return 1;
  }
  shutdown(fd, SHUT_WR);
  char buf[4096];
  ssize_t got;
  while ((got = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)got, stdout);
  close(fd);
  p2proxy_client_free(client);
  return got < 0 ? 1 : 0;
}
