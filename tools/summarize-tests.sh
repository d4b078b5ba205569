#!/usr/bin/env bash
# The end of `make test`: names each failure (from the .failures files that
# tools/run-cpp-tests.sh and tools/run-r-suites.sh write beside their
# counts), then prints the counts of each suite and the one line
# "N passed, N failed". Exits non-zero when anything failed.
#
#   tools/summarize-tests.sh <C++ counts> <R suites>
set -uo pipefail
cpp_counts=$1 r_suites=$2
read -r cpp_passed cpp_failed < "$cpp_counts" || { cpp_passed=0; cpp_failed=1; }
line="C++ tests: $cpp_passed passed, $cpp_failed failed"
total_passed=$cpp_passed
total_failed=$cpp_failed
while read -r label passed failed; do
  if [ "$passed" = skipped ]; then
    line="$line; $label tests: skipped"
    continue
  fi
  line="$line; $label tests: $passed passed, $failed failed"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
done < "$r_suites"
if [ "$total_failed" -ne 0 ]; then
  echo "Failed:"
  sed 's/^/  C++: /' "$cpp_counts.failures" 2>/dev/null
  sed 's/^/  /' "$r_suites.failures" 2>/dev/null
fi
echo "$line"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
