// dial.h: what a connection through libp2proxy is. Every connection the library hands to a
// program is a plain file descriptor the program owns and closes, so every language's socket
// code works on it (read/write, poll, select, Python's socket and ssl, asyncio):
//
// - Client::Dial (client.h): a connected AF_UNIX SOCK_STREAM socket, one end of a socketpair
//   whose other end the library splices into the TCP connection inside the overlay. Bytes flow
//   both ways; shutdown(SHUT_WR) is passed on as a half-close; close() ends the connection. A
//   connection the resource resets reads as end of file.
// - Client::DialUdp (client.h): a connected AF_UNIX SOCK_SEQPACKET socket: each message
//   written is one UDP datagram to the resource, each datagram from the resource (and only from
//   it) one message to read. Datagrams are not queued without bound: a program that does not
//   read loses them, as with UDP. Empty datagrams cannot be sent (a zero-length read is the
//   end). close() ends the flow.
// - Listener::Accept (site.h): a Connection: a SOCK_STREAM socket as for Dial, and the Peer it
//   comes from, already allowed by the resource's access rules.
#ifndef P2PROXY_DIAL_H_
#define P2PROXY_DIAL_H_

#include <cstdint>
#include <string>
#include <vector>

namespace p2proxy {

// Peer: who an accepted connection comes from.
struct Peer {
  std::string resource;  // the resource's name
  // user and roles: the identity the server gave the peer's device. For a tcp resource they
  // are the connection's; for an https resource the site proxies each request (keep-alive
  // connections carry requests of several users) and gives each request's identity in its
  // X-P2proxy-User and X-P2proxy-Roles headers instead, so these are empty.
  std::string user;
  std::vector<std::string> roles;
  std::string address;  // the peer's overlay address ("100.96.0.5"); empty for https
  uint16_t port = 0;
};

// Connection: an accepted connection: a connected stream socket the caller owns and closes.
struct Connection {
  int fd = -1;
  Peer peer;
};

}  // namespace p2proxy

#endif  // P2PROXY_DIAL_H_
