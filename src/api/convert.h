// convert.h: internal statuses to the public API's (include/p2proxy/status.h).
#ifndef P2PROXY_API_CONVERT_H_
#define P2PROXY_API_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "p2proxy/status.h"

namespace p2proxy::api {

inline Status FromAbsl(const absl::Status& st) {
  if (st.ok()) return Status();
  return Status(static_cast<Code>(static_cast<int>(st.code())), std::string(st.message()));
}

}  // namespace p2proxy::api

#endif  // P2PROXY_API_CONVERT_H_
