#!/usr/bin/env bash
# Builds and runs the GoogleTest suite of the C++ core; writes
# "<passed> <failed>" to the file named by argument 1.
set -uo pipefail
out=$1
build=build/cpp
rm -f "$build/results.txt"
cmake -S tests/cpp -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build.log" 2>&1 &&
  cmake --build "$build" -j2 >> "$build.log" 2>&1
if [ $? -ne 0 ]; then
  tail -n 40 "$build.log"
  echo "0 1" > "$out"
  exit 1
fi
"$build/shmr_core_tests" --gtest_brief=1 | tee "$build/results.txt"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '\[  PASSED  \] [0-9]+' "$build/results.txt" | grep -Eo '[0-9]+$' || echo 0)
failed=$(grep -E '^\[  FAILED  \] [A-Za-z_]' "$build/results.txt" | sort -u | wc -l)
[ -n "$passed" ] || passed=0
[ -n "$failed" ] || failed=0
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed $failed" > "$out"
exit "$status"
