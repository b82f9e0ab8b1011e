// Tests for P2P_RETURN_IF_ERROR and P2P_ASSIGN_OR_RETURN.
#include "base/status_macros.h"

#include <catch2/catch.hpp>
#include <memory>

namespace {

absl::StatusOr<int> Half(int v) {
  if (v % 2 != 0) return absl::InvalidArgumentError("odd");
  return v / 2;
}

absl::StatusOr<int> Quarter(int v) {
  P2P_ASSIGN_OR_RETURN(int half, Half(v));
  P2P_ASSIGN_OR_RETURN(auto quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int v, int* calls) {
  ++*calls;
  P2P_RETURN_IF_ERROR(Half(v).status());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> MakeBox(int v) { return std::make_unique<int>(v); }

absl::StatusOr<int> Unbox() {
  std::unique_ptr<int> box;
  P2P_ASSIGN_OR_RETURN(box, MakeBox(7));  // assignment to an existing move-only variable
  return *box;
}

}  // namespace

TEST_CASE("status macros propagate errors and values") {
  REQUIRE(Quarter(8).value() == 2);
  auto odd_first = Quarter(7);
  REQUIRE(odd_first.status().code() == absl::StatusCode::kInvalidArgument);
  auto odd_second = Quarter(6);  // 6/2 = 3 is odd
  REQUIRE(odd_second.status().message() == "odd");
  int calls = 0;
  REQUIRE(CheckEven(4, &calls).ok());
  REQUIRE_FALSE(CheckEven(5, &calls).ok());
  REQUIRE(calls == 2);
  REQUIRE(Unbox().value() == 7);
}
