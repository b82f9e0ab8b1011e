#!/usr/bin/env bash
# test.sh: from a fresh Debian 12 machine (as root) to a full test run: installs what is needed
# (scripts/setup.sh), builds once per configuration with ccache, and runs ctest in parallel:
#   1. ci (RelWithDebInfo, warnings are errors): unit, interop and namespace tests
#   2. asan: the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (less the
#      long end-to-end runs, label "heavy")
#   3. fuzz: every libFuzzer target briefly over its seed corpus (clang)
# Usage: scripts/test.sh [--quick]   (--quick: only configuration 1)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

scripts/setup.sh test >&2

# ccache: one cache for every clone and build directory on this machine.
export CCACHE_BASEDIR="$root"
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
jobs=$(nproc)

total_pass=0
total_fail=0
failed_configs=()

run_config() {
  local preset=$1
  shift
  local filter=("$@")
  echo "=== [$preset] configure + build" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== [$preset] ctest" >&2
  local log
  log=$(mktemp)
  local rc=0
  ctest --preset "$preset" -j "$((jobs * 2))" "${filter[@]}" 2>&1 | tee "$log" || rc=$?
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  local line pass fail
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n1 || true)
  if [ -n "$line" ]; then
    fail=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    pass=$((total - fail))
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
  elif [ $rc -ne 0 ]; then
    total_fail=$((total_fail + 1))
  fi
  if [ $rc -ne 0 ]; then
    failed_configs+=("$preset")
    digest+=("$(failure_digest "$preset" "$log")")
  fi
  rm -f "$log"
}

# failure_digest PRESET CTEST_LOG: each failed test's last lines of output, printed again at the
# very end so that a CI log cut in the middle still shows why a test failed.
failure_digest() {
  local bdir=$1
  [ "$bdir" = ci ] && bdir=default  # the ci preset builds in build/default (CMakePresets.json)
  local dir="$root/build/$bdir/Testing/Temporary"
  [ -f "$dir/LastTest.log" ] || return 0
  local name
  sed -n '/The following tests FAILED:/,$p' "$2" | sed -nE 's/^[[:space:]]+[0-9]+ - (.*) \([^)]*\)$/\1/p' |
  while read -r name; do
    echo "--- [$1] $name: last lines of its output"
    awk -v t="$name" '$0 ~ "^[0-9]+/[0-9]+ Test: " && substr($0, index($0, "Test: ") + 6) == t {on=1; next}
                      on && /^<end of output>/ {exit} on {print}' "$dir/LastTest.log" | tail -n 60
  done
}
digest=()

start=$(date +%s)
run_config ci
if [ $quick -eq 0 ]; then
  run_config asan -LE heavy
  run_config fuzz -L fuzz
fi
ccache -s 2>/dev/null | grep -iE 'hits|misses' | head -3 >&2 || true
echo "test.sh: finished in $(( $(date +%s) - start ))s" >&2
if [ ${#failed_configs[@]} -gt 0 ]; then
  echo "test.sh: failures in: ${failed_configs[*]}" >&2
  printf '%s\n' "${digest[@]}" >&2
fi
echo "all: $total_pass passed, $total_fail failed"
[ ${#failed_configs[@]} -eq 0 ]
