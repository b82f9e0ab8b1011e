// order.cc: FrameOrder, the control channel's direction and order rules.
#include "control/order.h"

#include "absl/strings/str_cat.h"

namespace p2proxy::control {

using Case = wire::Frame::MessageCase;

std::string_view MessageName(const wire::Frame& frame) {
  const auto* field = wire::Frame::descriptor()->FindFieldByNumber(frame.message_case());
  return field ? std::string_view(field->name()) : std::string_view("none");
}

FrameOrder::FrameOrder(Role role, bool node_has_certificate, std::string node_id)
    : role_(role), node_has_certificate_(node_has_certificate), node_id_(std::move(node_id)) {}

absl::Status FrameOrder::Check(bool from_node, const wire::Frame& frame) {
  switch (frame.message_case()) {
    case Case::kPing:
    case Case::kPong:
    case Case::kError:
      return absl::OkStatus();  // connection-level: either side, any time
    default:
      break;
  }
  return from_node ? FromNode(frame) : FromServer(frame);
}

absl::Status FrameOrder::FromNode(const wire::Frame& frame) {
  const std::string name(MessageName(frame).data(), MessageName(frame).size());
  if (mode_ == Mode::kEnrollment) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": enroll is the only frame a node sends on an enrollment connection"));
  }
  switch (frame.message_case()) {
    case Case::kEnroll:
      if (node_has_certificate_) {
        return absl::InvalidArgumentError(
            "enroll: not on a connection with a node certificate (the node is enrolled already)");
      }
      if (mode_ != Mode::kFirst) return absl::InvalidArgumentError("enroll: only as the first frame");
      mode_ = Mode::kEnrollment;
      return absl::OkStatus();
    case Case::kHello:
      if (!node_has_certificate_) {
        return absl::InvalidArgumentError("hello: needs a node certificate (enroll first)");
      }
      if (mode_ == Mode::kSession) return absl::InvalidArgumentError("hello: sent twice");
      if (!node_id_.empty() && frame.hello().node_id() != node_id_) {
        // Both ids passed ValidateFrame / certificate checks; ids are not secrets.
        return absl::InvalidArgumentError(absl::StrCat("hello.node_id: '", frame.hello().node_id(),
                                                       "' is not the certificate's '", node_id_, "'"));
      }
      mode_ = Mode::kSession;
      return absl::OkStatus();
    case Case::kAck:
      if (frame.ack().what_case() == wire::Ack::kAuditBatch) {
        return absl::InvalidArgumentError("ack.audit_batch: only the server sends it");
      }
      [[fallthrough]];
    case Case::kEndpointReport:
    case Case::kHealth:
    case Case::kAuditBatch:
      if (mode_ != Mode::kSession) return absl::InvalidArgumentError(absl::StrCat(name, ": before hello"));
      return absl::OkStatus();
    case Case::kEnrolled:
    case Case::kSnapshot:
      return absl::InvalidArgumentError(absl::StrCat(name, ": only the server sends it"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(name, ": unknown message"));
  }
}

absl::Status FrameOrder::FromServer(const wire::Frame& frame) {
  const std::string name(MessageName(frame).data(), MessageName(frame).size());
  switch (frame.message_case()) {
    case Case::kEnrolled:
      if (mode_ != Mode::kEnrollment) return absl::InvalidArgumentError("enrolled: without enroll");
      if (enrolled_sent_) return absl::InvalidArgumentError("enrolled: sent twice");
      enrolled_sent_ = true;
      return absl::OkStatus();
    case Case::kAck:
      if (frame.ack().what_case() == wire::Ack::kSnapshotVersion) {
        return absl::InvalidArgumentError("ack.snapshot_version: only a node sends it");
      }
      [[fallthrough]];
    case Case::kSnapshot:
      if (mode_ != Mode::kSession) return absl::InvalidArgumentError(absl::StrCat(name, ": before hello"));
      return absl::OkStatus();
    case Case::kEnroll:
    case Case::kHello:
    case Case::kEndpointReport:
    case Case::kHealth:
    case Case::kAuditBatch:
      return absl::InvalidArgumentError(absl::StrCat(name, ": only a node sends it"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(name, ": unknown message"));
  }
}

}  // namespace p2proxy::control
