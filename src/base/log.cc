// log.cc: formatting and sinks for structured log lines.
#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/time/clock.h"

namespace p2proxy::base {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<const Clock*> g_clock{nullptr};

struct SinkState {
  std::mutex mu;
  LogSink sink;
};

SinkState& Sink() {
  static SinkState* state = new SinkState();
  return *state;
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '=' || c == '"' || c == '\\' || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "unknown";
}

bool ParseLogLevel(absl::string_view name, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError,
                     LogLevel::kOff}) {
    if (absl::EqualsIgnoreCase(name, LogLevelName(l))) {
      *out = l;
      return true;
    }
  }
  return false;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

void SetLogSink(LogSink sink) {
  std::lock_guard<std::mutex> lock(Sink().mu);
  Sink().sink = std::move(sink);
}

void SetLogClock(const Clock* clock) { g_clock.store(clock); }

void AppendLogValue(std::string* out, absl::string_view value) {
  if (!NeedsQuotes(value)) {
    out->append(value.data(), value.size());
    return;
  }
  out->push_back('"');
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (u < 0x20 || u == 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out->append("\\x");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xf]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

LogLine::LogLine(LogLevel level, absl::string_view event) : level_(level) {
  const Clock* clock = g_clock.load();
  absl::Time now = clock ? clock->Wall() : absl::Now();
  line_.reserve(128);
  line_.append("ts=");
  line_.append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone()));
  line_.append(" level=");
  line_.append(LogLevelName(level).data(), LogLevelName(level).size());
  line_.append(" event=");
  AppendLogValue(&line_, event);
}

LogLine& LogLine::Kv(absl::string_view key, absl::string_view value) {
  line_.push_back(' ');
  line_.append(key.data(), key.size());
  line_.push_back('=');
  AppendLogValue(&line_, value);
  return *this;
}

LogLine::~LogLine() {
  std::lock_guard<std::mutex> lock(Sink().mu);
  if (Sink().sink) {
    Sink().sink(level_, line_);
    return;
  }
  line_.push_back('\n');
  fwrite(line_.data(), 1, line_.size(), stderr);
}

bool LogRateLimiter::Allow() {
  absl::Duration now = clock_ ? clock_->Monotonic() : RealClock::Get().Monotonic();
  if (last_ != absl::InfiniteDuration() && now > last_) {
    tokens_ += absl::ToDoubleSeconds(now - last_) * per_second_;
    if (tokens_ > burst_) tokens_ = burst_;
  }
  last_ = now;
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  ++suppressed_;
  return false;
}

uint64_t LogRateLimiter::TakeSuppressed() {
  uint64_t n = suppressed_;
  suppressed_ = 0;
  return n;
}

}  // namespace p2proxy::base
