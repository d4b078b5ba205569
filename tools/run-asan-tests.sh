#!/usr/bin/env bash
# `make test-asan`: builds shmr with AddressSanitizer and UBSan (gcc) into its
# own library, build/asan-lib (the normal installation is never touched), and
# runs the whole R test suite against it; then the C++ engine tests, built
# with the same sanitizers (and leak detection). R itself is not instrumented, so
# every R process (callr and PSOCK workers too, through the environment) runs
# with libasan preloaded and leak detection off (R does not free everything
# at exit). Any sanitizer report is written to build/asan/report.<pid> and
# fails the run, as does a failed test. Writes "<passed> <failed>" to the
# file named by argument 1.
set -uo pipefail
out=${1:-build/asan/r-counts}
asan=build/asan
lib=$PWD/build/asan-lib
rm -rf "$asan" && mkdir -p "$asan" "$lib"

flags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
cat > "$asan/Makevars" <<MAKEVARS
CXX17FLAGS = $flags
CXXFLAGS = $flags
CFLAGS = $flags
LDFLAGS = -fsanitize=address,undefined
MAKEVARS

libasan=$(${CC:-gcc} -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "test-asan: libasan.so not found (gcc without AddressSanitizer?)"
  echo "0 1" > "$out"
  exit 1
fi

export R_LIBS="$lib${R_LIBS:+:$R_LIBS}"
if ! R_MAKEVARS_USER="$PWD/$asan/Makevars" ${R:-R} CMD INSTALL --preclean --no-multiarch --no-test-load \
     --library="$lib" . > "$asan/install.log" 2>&1; then
  tail -n 40 "$asan/install.log"
  echo "0 1" > "$out"
  exit 1
fi
grep -q -- "-fsanitize=address" "$asan/install.log" || {
  echo "test-asan: the package was not built with the sanitizers"; echo "0 1" > "$out"; exit 1; }

# detect_leaks=0: R's own allocations live until exit. The sanitizers'
# reports go to files, one per process, so workers' reports are kept too.
export ASAN_OPTIONS="detect_leaks=0:log_path=$PWD/$asan/report:allow_user_segv_handler=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$PWD/$asan/report"
SHMR_TEST_FILE_SECONDS=${SHMR_TEST_FILE_SECONDS:-3600} bash tools/run-r-tests.sh "$out" env LD_PRELOAD="$libasan" ${RSCRIPT:-Rscript} \
  > "$asan/tests.log" 2>&1 || echo "0 1" > "$out"
tail -n 25 "$asan/tests.log"

reports=$(ls "$asan"/report.* 2>/dev/null | wc -l)
read -r passed failed < "$out"

# The engine's GoogleTest suite (with the fuzz corpus replay) under the same
# sanitizers.
if cmake -S tests/cpp -B build/cpp-asan -DSHMR_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
     > "$asan/cpp-build.log" 2>&1 && cmake --build build/cpp-asan -j2 >> "$asan/cpp-build.log" 2>&1; then
  if ASAN_OPTIONS=detect_leaks=1 build/cpp-asan/shmr_core_tests --gtest_brief=1 > "$asan/cpp.log" 2>&1; then
    cpp=$(grep -Eo '\[  PASSED  \] [0-9]+' "$asan/cpp.log" | grep -Eo '[0-9]+$')
    passed=$((passed + ${cpp:-0}))
  else
    failed=$((failed + 1))
    tail -n 30 "$asan/cpp.log"
  fi
else
  failed=$((failed + 1))
  tail -n 30 "$asan/cpp-build.log"
fi
echo "$passed $failed" > "$out"
if [ "$reports" -gt 0 ]; then
  echo "test-asan: $reports sanitizer report(s):"
  for r in "$asan"/report.*; do echo "== $r"; head -n 30 "$r"; done
  failed=$((failed + reports))
  echo "$passed $failed" > "$out"
fi
echo "test-asan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
