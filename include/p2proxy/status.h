// status.h: how libp2proxy's C++ API reports failure: a Status (a code and a message a person
// can act on) or a Result<T> (a value or the Status why not). No exception crosses the API.
#ifndef P2PROXY_STATUS_H_
#define P2PROXY_STATUS_H_

#include <cstdio>
#include <cstdlib>
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

// Result<T>: a value, or the Status why not. Reading the value of a failed Result is a bug in
// the caller: it aborts with the status's message (never undefined behaviour).
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: a value converts, as in StatusOr
  // A Result made from a Status is a failure: an OK status here becomes kUnknown.
  Result(Status status)  // NOLINT
      : status_(status.ok() ? Status(Code::kUnknown, "a Result was made from an OK status without a value")
                            : std::move(status)) {}
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return Checked(); }
  const T& value() const& { return Checked(); }
  T&& value() && { return std::move(Checked()); }
  T& operator*() & { return Checked(); }
  const T& operator*() const& { return Checked(); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &Checked(); }

 private:
  T& Checked() {
    if (!value_.has_value()) Fail();
    return *value_;
  }
  const T& Checked() const {
    if (!value_.has_value()) Fail();
    return *value_;
  }
  [[noreturn]] void Fail() const {
    std::fprintf(stderr, "p2proxy: the value of a failed Result was used (code %d): %s\n",
                 static_cast<int>(status_.code()), status_.message().c_str());
    std::abort();
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace p2proxy

#endif  // P2PROXY_STATUS_H_
