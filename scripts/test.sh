#!/usr/bin/env bash
# npm test: set up, then run every suite and end with one line `N passed, N failed` covering
# all of them; exits non-zero if anything failed.
#   npm test                type check, unit, integration, extension-host, UI (the workbench in
#                           Chromium, screenshots in test-results/ui/), harness self-tests
#   npm run test:long       the same plus test/long/, and the extension host's soak for 10 minutes
#   GRASS_TEST_ONLY=unit,extension npm test    only the suites named
#     (check | unit | integration | extension | ui | harness | long)
#   GRASS_EXTENSION_GREP=soak GRASS_TEST_ONLY=extension npm test    only the extension-host tests
#                           whose titles match
set -uo pipefail
cd "$(dirname "$0")/.."

long=0
for arg in "$@"; do
  case "$arg" in
    --long) long=1; export GRASS_EXTENSION_SOAK_SECONDS=${GRASS_EXTENSION_SOAK_SECONDS:-600} ;;
    *) echo "grass test: unknown option '$arg' (only --long)" >&2; exit 2 ;;
  esac
done

only=${GRASS_TEST_ONLY:-}
for suite in ${only//,/ }; do
  case "$suite" in
    check | unit | integration | extension | ui | harness | long) ;;
    *) echo "grass test: GRASS_TEST_ONLY names an unknown suite '$suite' (check, unit, integration, extension, ui, harness, long)" >&2; exit 2 ;;
  esac
done

setup_started=$(date +%s)
bash scripts/setup.sh || { echo "grass test: set-up failed"; echo "0 passed, 1 failed"; exit 1; }
summary_setup="set-up: $(($(date +%s) - setup_started)) s"

results=$(mktemp -d /tmp/grass-test-results-XXXXXX)
trap 'rm -rf "$results"' EXIT
total_passed=0
total_failed=0
summary=()

wanted() {
  local only=${GRASS_TEST_ONLY:-}
  [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]
}

# Each suite's wall time goes into the summary: CI has a 30-minute budget to stay well under.
suite_started=$(date +%s)
record() { # suite passed failed
  local took=$(($(date +%s) - suite_started))
  suite_started=$(date +%s)
  total_passed=$((total_passed + $2))
  total_failed=$((total_failed + $3))
  summary+=("$1: $2 passed, $3 failed ($took s)")
  echo "grass test: $1: $2 passed, $3 failed ($took s)" >&2
}

# TypeScript strict over the whole tree (tests run through tsx, which does not type-check):
# the extension host, CLI and tools with Node types, the webviews with DOM types; then the
# import boundaries between layers (.dependency-cruiser.cjs, docs/dependencies.md).
check_suite() {
  local passed=0 failed=0 step
  for step in "tsc --noEmit -p ." "tsc --noEmit -p webview" "depcruise src webview --config .dependency-cruiser.cjs"; do
    echo "grass test: check: $step" >&2
    if npx --no-install $step; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done
  record check "$passed" "$failed"
}

# Runs node:test files: spec output to the terminal, TAP to a file; sets run_passed/run_failed.
run_node_files() { # tap file...
  local tap=$1 rc=0 cancelled
  shift
  node --import tsx --test --test-timeout=600000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "$@" || rc=$?
  run_passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
  run_failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
  cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" | tail -1)
  run_passed=${run_passed:-0}
  run_failed=$((${run_failed:-0} + ${cancelled:-0}))
  # A runner that died without a summary, or failed without a failed test, still failed.
  if [ "$rc" -ne 0 ] && [ "$run_failed" -eq 0 ]; then run_failed=1; fi
}

# A suite of node:test files (test/<suite>/*.test.ts). Suites against real guests (integration,
# long) run file by file, and a file that fails is run once more: QEMU under TCG on a loaded
# host can miss a timing, and a whole suite should not hang on that. A file that fails again
# counts as failed; one that passes the second time is named as FLAKY in the summary.
node_suite() {
  local suite=$1 retry=${2:-} files=()
  shopt -s nullglob
  files=(test/"$suite"/*.test.ts)
  shopt -u nullglob
  if [ ${#files[@]} -eq 0 ]; then
    echo "grass test: $suite: no test files" >&2
    return
  fi
  echo "grass test: $suite: ${#files[@]} file(s)" >&2
  if [ "$retry" != retry ]; then
    run_node_files "$results/$suite.tap" "${files[@]}"
    record "$suite" "$run_passed" "$run_failed"
    return
  fi
  local file name passed=0 failed=0
  local file_started
  for file in "${files[@]}"; do
    name=$(basename "$file" .test.ts)
    file_started=$(date +%s)
    run_node_files "$results/$suite-$name.tap" "$file"
    if [ "$run_failed" -ne 0 ]; then
      echo "grass test: $suite: $file failed ($run_failed); running it once more" >&2
      run_node_files "$results/$suite-$name.retry.tap" "$file"
      [ "$run_failed" -eq 0 ] && summary+=("FLAKY: $file failed, then passed when run again")
    fi
    echo "grass test: $suite: $file took $(($(date +%s) - file_started)) s" >&2
    passed=$((passed + run_passed))
    failed=$((failed + run_failed))
  done
  record "$suite" "$passed" "$failed"
}

# The extension-host suite: runTests() through the code-server launcher; the suite prints
# `grass-suite-result: N passed, N failed` from inside the extension host.
extension_suite() {
  local log=$results/extension.log rc=0
  echo "grass test: extension: running in code-server's extension host" >&2
  # The whole run's bound: about 210 s on an idle 2-core host with the 60 s extension-host soak;
  # room for a loaded one, and for the long form's 600 s soak.
  local bound=$((600 + ${GRASS_EXTENSION_SOAK_SECONDS:-60}))
  GRASS_LAUNCHER_TIMEOUT_S=${GRASS_LAUNCHER_TIMEOUT_S:-$bound} node --import tsx test/harness/run-suite.ts out/test/extension/index.js | tee "$log" || rc=$?
  local line passed=0 failed=0
  line=$(grep -o 'grass-suite-result: [0-9]* passed, [0-9]* failed' "$log" | tail -1)
  if [ -n "$line" ]; then
    passed=$(echo "$line" | sed 's/.*: \([0-9]*\) passed.*/\1/')
    failed=$(echo "$line" | sed 's/.* \([0-9]*\) failed/\1/')
  fi
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  record extension "$passed" "$failed"
}

wanted check && check_suite
wanted unit && node_suite unit
wanted integration && node_suite integration retry
wanted extension && extension_suite
wanted ui && node_suite ui retry
wanted harness && node_suite harness
if [ "$long" -eq 1 ] && wanted long; then node_suite long retry; fi

echo
echo "  $summary_setup"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
