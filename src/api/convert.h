// convert.h: internal statuses to the public API's (include/p2proxy/status.h).
#ifndef P2PROXY_API_CONVERT_H_
#define P2PROXY_API_CONVERT_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "p2proxy/status.h"

namespace p2proxy::api {

inline Status FromAbsl(const absl::Status& st) {
  if (st.ok()) return Status();
  return Status(static_cast<Code>(static_cast<int>(st.code())), std::string(st.message()));
}

// AppendJson appends |s| as a JSON string (quoted, escaped) to |*out|.
inline void AppendJson(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

}  // namespace p2proxy::api

#endif  // P2PROXY_API_CONVERT_H_
