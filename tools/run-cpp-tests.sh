#!/usr/bin/env bash
# Builds and runs the GoogleTest suite of the C++ core; writes
# "<passed> <failed>" to the file named by argument 1, and one line per
# failure (the test's name, or why the suite did not run to its end) to that
# name followed by .failures.
set -uo pipefail
out=$1
failures="$out.failures"
build=build/cpp
rm -f "$build/results.txt"
: > "$failures"
cmake -S tests/cpp -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build.log" 2>&1 &&
  cmake --build "$build" -j2 >> "$build.log" 2>&1
if [ $? -ne 0 ]; then
  tail -n 40 "$build.log"
  echo "0 1" > "$out"
  echo "the suite did not build (see $build.log)" > "$failures"
  exit 1
fi
"$build/shmr_core_tests" --gtest_brief=1 | tee "$build/results.txt"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '\[  PASSED  \] [0-9]+' "$build/results.txt" | grep -Eo '[0-9]+$' || echo 0)
[ -n "$passed" ] || passed=0
# Brief output prints one line per failing test, with its time.
grep -E '^\[  FAILED  \] [A-Za-z_]' "$build/results.txt" |
  sed -e 's/^\[  FAILED  \] //' -e 's/ ([0-9]* ms)$//' | sort -u > "$failures"
failed=$(wc -l < "$failures")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
  echo "the suite ended with status $status before reporting a failing test" > "$failures"
fi
echo "$passed $failed" > "$out"
exit "$status"
