// Tests for structured logging and its rate limiter.
#include "base/log.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace p2proxy::base;

namespace {

// CaptureLog collects lines while it lives, with a fixed clock.
class CaptureLog {
 public:
  CaptureLog() : clock_(absl::FromUnixSeconds(1763921400)) {  // 2025-11-23T18:10:00Z
    SetLogClock(&clock_);
    SetLogSink([this](LogLevel, absl::string_view line) { lines.emplace_back(line); });
  }
  ~CaptureLog() {
    SetLogSink(nullptr);
    SetLogClock(nullptr);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines;
  FakeClock clock_;
};

}  // namespace

TEST_CASE("a log line is key=value with a timestamp, level and event") {
  CaptureLog cap;
  P2P_LOG(kInfo, "udp.bound").Kv("addr", "127.0.0.1:51820").Kv("batch", 32).Kv("ok", true);
  REQUIRE(cap.lines.size() == 1);
  REQUIRE(cap.lines[0] ==
          "ts=2025-11-23T18:10:01.000Z level=info event=udp.bound addr=127.0.0.1:51820 batch=32 ok=true");
}

TEST_CASE("values that need it are quoted and escaped") {
  CaptureLog cap;
  P2P_LOG(kWarn, "x").Kv("a", "two words").Kv("b", "").Kv("c", "q\"\\").Kv("d", "l1\nl2\x01");
  REQUIRE(cap.lines.size() == 1);
  REQUIRE(cap.lines[0].substr(cap.lines[0].find("level=")) ==
          "level=warn event=x a=\"two words\" b=\"\" c=\"q\\\"\\\\\" d=\"l1\\nl2\\x01\"");
}

TEST_CASE("lines below the level are dropped without evaluating their values") {
  CaptureLog cap;
  SetLogLevel(LogLevel::kWarn);
  int evaluated = 0;
  auto value = [&] { ++evaluated; return 1; };
  P2P_LOG(kInfo, "quiet").Kv("v", value());
  P2P_LOG(kError, "loud").Kv("v", value());
  REQUIRE(cap.lines.size() == 1);
  REQUIRE(evaluated == 1);
  LogLevel parsed;
  REQUIRE(ParseLogLevel("DEBUG", &parsed));
  REQUIRE(parsed == LogLevel::kDebug);
  REQUIRE_FALSE(ParseLogLevel("verbose", &parsed));
}

TEST_CASE("the rate limiter lets a burst through, then a steady rate, and counts the rest") {
  CaptureLog cap;
  FakeClock clock;
  LogRateLimiter limiter(/*per_second=*/2, /*burst=*/3, &clock);
  for (int i = 0; i < 10; ++i) P2P_LOG_RATELIMITED(limiter, kWarn, "wg.drop").Kv("i", i);
  REQUIRE(cap.lines.size() == 3);
  clock.Advance(absl::Seconds(1));  // two more tokens
  for (int i = 0; i < 10; ++i) P2P_LOG_RATELIMITED(limiter, kWarn, "wg.drop").Kv("i", i);
  REQUIRE(cap.lines.size() == 5);
  // The first line after the pause reports the 7 held back before it.
  REQUIRE(cap.lines[3].find("event=wg.drop suppressed=7 i=0") != std::string::npos);
  REQUIRE(cap.lines[4].find("suppressed") == std::string::npos);
}
