// errno_text.h: the text of an errno value, for error messages.
#ifndef P2PROXY_BASE_ERRNO_TEXT_H_
#define P2PROXY_BASE_ERRNO_TEXT_H_

#include <string>

namespace p2proxy::base {

// ErrnoText is strerror(err) without strerror's shared buffer (thread-safe).
std::string ErrnoText(int err);

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_ERRNO_TEXT_H_
