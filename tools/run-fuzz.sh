#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of tests/fuzz with clang
# (-fsanitize=fuzzer,address,undefined) and runs each from the committed seed
# corpus. FUZZ_SECONDS (default 60) is the run time of the region reader
# target; the locator and names targets, whose inputs are small, get
# FUZZ_SMALL_SECONDS (default a sixth of it, at least 10). New inputs go to
# build/fuzz/corpus-<target>, crashes to build/fuzz/artifacts/. Exits non-zero
# when a target found a crash; reproduce one with
#   build/fuzz/fuzz_<target> build/fuzz/artifacts/<target>-crash-...
set -euo pipefail
seconds=${FUZZ_SECONDS:-60}
small=${FUZZ_SMALL_SECONDS:-$(( seconds / 6 > 10 ? seconds / 6 : 10 ))}
out=build/fuzz
mkdir -p "$out/obj" "$out/artifacts"

CXX=$(bash tools/install-clang.sh)
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
       -fno-sanitize-recover=undefined -Isrc/core -Itests/fuzz)

echo "fuzz: building with $CXX"
objects=()
for src in src/core/*.cpp tests/fuzz/fuzz_checks.cpp; do
  obj="$out/obj/$(basename "${src%.cpp}").o"
  "$CXX" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  objects+=("$obj")
done
targets=(region locator names)
for target in "${targets[@]}"; do
  "$CXX" "${flags[@]}" -fsanitize=fuzzer -DSHMR_FUZZ_TARGET="$target" \
    tests/fuzz/fuzz_target.cpp "${objects[@]}" -o "$out/fuzz_$target"
done

status=0
for target in "${targets[@]}"; do
  time_limit=$small
  [ "$target" = region ] && time_limit=$seconds
  work="$out/corpus-$target"
  mkdir -p "$work"
  seeds=(tests/fuzz/corpus/"$target")
  [ -d tests/fuzz/regressions/"$target" ] && seeds+=(tests/fuzz/regressions/"$target")
  echo "fuzz: $target for ${time_limit}s"
  if ! "$out/fuzz_$target" -max_total_time="$time_limit" -max_len=65536 -timeout=20 \
      -rss_limit_mb=2048 -print_final_stats=1 -dict=tests/fuzz/"$target".dict \
      -artifact_prefix="$out/artifacts/$target-" "$work" "${seeds[@]}" \
      > "$out/$target.log" 2>&1; then
    status=1
    echo "fuzz: $target FAILED; see $out/$target.log and $out/artifacts/"
    grep -E 'ERROR|shmr fuzz|SUMMARY' "$out/$target.log" | head -n 10 || true
  else
    grep -E '^stat::number_of_executed_units|^Done' "$out/$target.log" || true
  fi
done
[ "$status" -eq 0 ] && echo "fuzz: no crash"
exit "$status"
