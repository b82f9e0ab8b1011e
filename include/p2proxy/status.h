// status.h: how libp2proxy's C++ API reports failure: a Status (a code and a message a person
// can act on) or a Result<T> (a value or the Status why not). No exception crosses the API.
#ifndef P2PROXY_STATUS_H_
#define P2PROXY_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace p2proxy {

// Code: the kind of failure. The numbers are the canonical status codes (as gRPC and abseil
// number them), and the C API's return values (p2proxy.h).
enum class Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,   // a bad option or argument: the message names it
  kDeadlineExceeded = 4,  // no answer in time (a dial, a start)
  kNotFound = 5,          // e.g. not a private name
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,  // e.g. not enrolled, or stopped
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,  // e.g. the server or a resource cannot be reached
  kDataLoss = 15,
  kUnauthenticated = 16,
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: a value converts, as in StatusOr
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace p2proxy

#endif  // P2PROXY_STATUS_H_
