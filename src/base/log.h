// log.h: structured logging. One line per event, on stderr by default:
//   ts=2026-11-23T18:00:00.123Z level=info event=udp.bound addr=127.0.0.1:51820
// Values are quoted when they need it. Secrets never go into a log line.
//
//   P2P_LOG(kInfo, "udp.bound").Kv("addr", addr);
//
// Per-packet events go through a LogRateLimiter so a flood of bad packets cannot flood the log:
//   static base::LogRateLimiter limiter;
//   P2P_LOG_RATELIMITED(limiter, kWarn, "wg.drop").Kv("reason", "bad_mac1");
#ifndef P2PROXY_BASE_LOG_H_
#define P2PROXY_BASE_LOG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"

namespace p2proxy::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// LogLevelName is "debug", "info", "warn" or "error".
absl::string_view LogLevelName(LogLevel level);
// ParseLogLevel accepts those names; false for anything else.
bool ParseLogLevel(absl::string_view name, LogLevel* out);

// SetLogLevel drops lines below |level| (default kInfo). Thread-safe.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel level) { return level >= GetLogLevel(); }

// A LogSink receives each finished line without its trailing newline. SetLogSink(nullptr)
// restores stderr. The sink is called under a lock, one line at a time.
using LogSink = std::function<void(LogLevel, absl::string_view line)>;
void SetLogSink(LogSink sink);
// SetLogClock chooses the clock for ts= (default the real clock); the clock must outlive logging.
void SetLogClock(const Clock* clock);

// AppendLogValue appends |value| to |out|, quoted and escaped if it is empty or holds a space,
// '=', '"', '\\' or a control character.
void AppendLogValue(std::string* out, absl::string_view value);

// LogLine collects key=value pairs and emits the line when destroyed.
class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Kv(absl::string_view key, absl::string_view value);
  LogLine& Kv(absl::string_view key, const char* value) { return Kv(key, absl::string_view(value)); }
  LogLine& Kv(absl::string_view key, const std::string& value) { return Kv(key, absl::string_view(value)); }
  LogLine& Kv(absl::string_view key, bool value) { return Kv(key, value ? "true" : "false"); }
  template <typename T>
  LogLine& Kv(absl::string_view key, const T& value) { return Kv(key, absl::StrCat(value)); }
  // Suppressed adds suppressed=N when a rate limiter held back N > 0 lines before this one.
  LogLine& Suppressed(uint64_t n) { return n == 0 ? *this : Kv("suppressed", n); }

 private:
  LogLevel level_;
  std::string line_;
};

// LogRateLimiter lets through |burst| lines at once and then |per_second| on average; the
// next line that gets through carries suppressed=N for those it held back.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(double per_second = 5, double burst = 20, const Clock* clock = nullptr)
      : per_second_(per_second), burst_(burst), tokens_(burst), clock_(clock) {}
  // Allow spends a token if one is there; otherwise counts a suppressed line.
  bool Allow();
  // TakeSuppressed returns the count held back since the last line let through, and zeroes it.
  uint64_t TakeSuppressed();

 private:
  double per_second_;
  double burst_;
  double tokens_;
  absl::Duration last_ = absl::InfiniteDuration();
  uint64_t suppressed_ = 0;
  const Clock* clock_;
};

}  // namespace p2proxy::base

#define P2P_LOG(level, event)                                               \
  if (!::p2proxy::base::LogEnabled(::p2proxy::base::LogLevel::level)) {     \
  } else                                                                    \
    ::p2proxy::base::LogLine(::p2proxy::base::LogLevel::level, (event))

#define P2P_LOG_RATELIMITED(limiter, level, event)                                        \
  if (!::p2proxy::base::LogEnabled(::p2proxy::base::LogLevel::level) || !(limiter).Allow()) { \
  } else                                                                                  \
    ::p2proxy::base::LogLine(::p2proxy::base::LogLevel::level, (event))                   \
        .Suppressed((limiter).TakeSuppressed())

#endif  // P2PROXY_BASE_LOG_H_
