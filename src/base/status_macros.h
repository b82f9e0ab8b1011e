// status_macros.h: the two Status macros the project uses (abseil 20220623 has none).
#ifndef P2PROXY_BASE_STATUS_MACROS_H_
#define P2PROXY_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// P2P_RETURN_IF_ERROR(expr) evaluates |expr| (an absl::Status) and returns it from the
// enclosing function if it is not OK.
#define P2P_RETURN_IF_ERROR(expr)                          \
  do {                                                     \
    ::absl::Status p2p_status_ = (expr);                   \
    if (!p2p_status_.ok()) return p2p_status_;             \
  } while (0)

#define P2P_STATUS_CONCAT_INNER_(a, b) a##b
#define P2P_STATUS_CONCAT_(a, b) P2P_STATUS_CONCAT_INNER_(a, b)

// P2P_ASSIGN_OR_RETURN(lhs, expr) evaluates |expr| (an absl::StatusOr<T>); on error it returns
// the status from the enclosing function, otherwise it moves the value into |lhs|, which may be
// a declaration ("auto x") or an existing variable.
#define P2P_ASSIGN_OR_RETURN(lhs, expr) \
  P2P_ASSIGN_OR_RETURN_IMPL_(P2P_STATUS_CONCAT_(p2p_statusor_, __LINE__), lhs, expr)
#define P2P_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

#endif  // P2PROXY_BASE_STATUS_MACROS_H_
