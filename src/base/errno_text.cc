// errno_text.cc: ErrnoText over either flavour of strerror_r.
#include "base/errno_text.h"

#include <cstring>

namespace p2proxy::base {
namespace {

// strerror_r comes in two flavours (GNU returns the text, XSI fills the buffer); take either.
[[maybe_unused]] const char* StrErrorText(int /*xsi_result*/, const char* buf) { return buf; }
[[maybe_unused]] const char* StrErrorText(const char* gnu_result, const char* /*buf*/) {
  return gnu_result;
}

}  // namespace

std::string ErrnoText(int err) {
  char buf[128] = {0};
  return StrErrorText(strerror_r(err, buf, sizeof(buf)), buf);
}

}  // namespace p2proxy::base
