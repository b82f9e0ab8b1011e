// order.h: the rules of the control channel that need context: which side may send which
// frame, and in what order (docs/control.md, control.proto). Both ends keep one FrameOrder
// per connection and check every frame they send and receive.
#ifndef P2PROXY_CONTROL_ORDER_H_
#define P2PROXY_CONTROL_ORDER_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "control/control.pb.h"

namespace p2proxy::control {

// Role is which end of the channel this is.
enum class Role { kServer, kNode };

// FrameOrder is the channel's state machine. A connection is one of:
// - an enrollment: no node certificate; the node's first frame is Enroll, and it is the only
//   frame the node sends (Ping, Pong and Error aside); the server answers one Enrolled (or an
//   Error) and closes.
// - a session: a verified node certificate; the node's first frame is Hello (once, its node_id
//   the certificate's CN); after it the node sends Ack{snapshot_version}, EndpointReport,
//   Health, AuditBatch, and the server Snapshot and Ack{audit_batch}.
// Ping, Pong and Error are allowed from either side at any time. Which kind of node may send
// Health (clients) or AuditBatch (sites) is the server's to check: the channel does not know
// the node's kind.
class FrameOrder {
 public:
  // |node_has_certificate|: the node presented a client certificate on this connection (the
  // server knows it from the handshake, the node from its own options). |node_id|: on the
  // server, the certificate's CN, which Hello must repeat; empty skips that check.
  FrameOrder(Role role, bool node_has_certificate, std::string node_id = "");

  // OnReceive checks a frame from the peer, OnSend one of ours, and advance the state if it
  // is allowed. Otherwise InvalidArgument with a reason without prefix ("snapshot: only the
  // server sends it"), and the state is unchanged.
  absl::Status OnReceive(const wire::Frame& frame) { return Check(role_ == Role::kServer, frame); }
  absl::Status OnSend(const wire::Frame& frame) { return Check(role_ == Role::kNode, frame); }

  bool enrollment() const { return mode_ == Mode::kEnrollment; }
  bool session() const { return mode_ == Mode::kSession; }

 private:
  enum class Mode { kFirst, kEnrollment, kSession };
  absl::Status Check(bool from_node, const wire::Frame& frame);
  absl::Status FromNode(const wire::Frame& frame);
  absl::Status FromServer(const wire::Frame& frame);

  Role role_;
  bool node_has_certificate_;
  std::string node_id_;
  Mode mode_ = Mode::kFirst;
  bool enrolled_sent_ = false;
};

// MessageName is the name of the frame's message field ("snapshot"), or "none".
std::string_view MessageName(const wire::Frame& frame);

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_ORDER_H_
