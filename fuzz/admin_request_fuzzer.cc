// admin_request_fuzzer: the admin socket's message decoders (server/admin_socket.h) on arbitrary
// bytes, each given the whole input as a payload (the length prefix is the connection's job).
//
// The format is strict (every length checked, nothing trailing), so it has one encoding: a
// request that decodes must keep the documented limits (at most kMaxAdminArgs args, at most
// kMaxAdminRequestLen bytes, no NUL in an arg), re-encode to exactly the input behind a length
// prefix that counts it, and decode from that again to the same args; without its last byte or
// with a byte more it must be refused. The same holds for a response (kMaxAdminResponseLen, an
// exit code of 0 to 255). A refusal must be InvalidArgument, one line "admin: ..." of printable
// ASCII and bounded length (the input is never echoed). A failure aborts.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/admin.h"
#include "server/admin_socket.h"

namespace {

using p2proxy::server::AdminResult;
using p2proxy::server::DecodeAdminRequest;
using p2proxy::server::DecodeAdminResponse;

void Check(bool ok) {
  if (!ok) std::abort();
}

// kMaxErrorLen: the messages are fixed texts and a version number.
constexpr size_t kMaxErrorLen = 256;

// CheckError: |status| is a refusal to log. The decoders' messages are fixed texts (and a
// version number), so besides the bound, every byte must be printable ASCII: a message that
// repeated the input would soon show a byte that is not.
void CheckError(const absl::Status& status) {
  Check(!status.ok() && status.code() == absl::StatusCode::kInvalidArgument);
  const absl::string_view message = status.message();
  Check(!message.empty() && message.size() <= kMaxErrorLen);
  Check(absl::StartsWith(message, "admin: "));
  for (char c : message) Check(c >= 0x20 && c < 0x7f);
}

uint32_t PrefixOf(const std::string& message) {
  Check(message.size() >= 4);
  const auto* b = reinterpret_cast<const uint8_t*>(message.data());
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

// Strict: |payload| (accepted) is refused without its last byte and with one more.
template <typename Decode>
void CheckStrict(absl::string_view payload, Decode decode) {
  Check(!payload.empty());
  auto shorter = decode(payload.substr(0, payload.size() - 1));
  CheckError(shorter.status());
  const std::string longer = std::string(payload) + '\0';
  auto more = decode(longer);
  CheckError(more.status());
}

void CheckRequest(absl::string_view payload) {
  auto args = DecodeAdminRequest(payload);
  if (!args.ok()) {
    CheckError(args.status());
    return;
  }
  Check(payload.size() <= p2proxy::server::kMaxAdminRequestLen);
  Check(args->size() <= p2proxy::server::kMaxAdminArgs);
  size_t total = 5;  // version, num_args
  for (const std::string& a : *args) {
    Check(a.find('\0') == std::string::npos);
    total += 4 + a.size();
  }
  Check(total == payload.size());
  const std::string message = p2proxy::server::EncodeAdminRequest(*args);
  Check(PrefixOf(message) == message.size() - 4);
  const absl::string_view again_payload = absl::string_view(message).substr(4);
  Check(again_payload == payload);
  auto again = DecodeAdminRequest(again_payload);
  Check(again.ok() && *again == *args);
  CheckStrict(payload, DecodeAdminRequest);
}

void CheckResponse(absl::string_view payload) {
  auto result = DecodeAdminResponse(payload);
  if (!result.ok()) {
    CheckError(result.status());
    return;
  }
  Check(payload.size() <= p2proxy::server::kMaxAdminResponseLen);
  Check(result->exit_code >= 0 && result->exit_code <= 255);
  Check(payload.size() == 10 + result->out.size() + result->err.size());
  const std::string message = p2proxy::server::EncodeAdminResponse(*result);
  Check(PrefixOf(message) == message.size() - 4);
  const absl::string_view again_payload = absl::string_view(message).substr(4);
  Check(again_payload == payload);
  auto again = DecodeAdminResponse(again_payload);
  Check(again.ok() && again->exit_code == result->exit_code && again->out == result->out &&
        again->err == result->err);
  CheckStrict(payload, DecodeAdminResponse);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view payload(reinterpret_cast<const char*>(data), size);
  CheckRequest(payload);
  CheckResponse(payload);
  return 0;
}
