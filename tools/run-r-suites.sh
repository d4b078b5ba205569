#!/usr/bin/env bash
# Runs the R test suite on the machine's R and, when ../shared/tools/r45.sh
# can provide it, on R 4.5 too (ALTREP lists exist only from R 4.3 on).
#
# For each R: shmr is built and installed into a library of the project's own
# under build/r-lib/<version> (never R's library), and R_LIBS is exported so
# that every worker the tests start (callr, PSOCK, mirai) loads that build.
# R 4.5's packages (cpp11, cli, testthat, callr, mirai, ..., and those of
# memshare's mutualinfo() estimators, whose reference values were taken on
# R 4.5) go into .r-library/<version> in this directory, installed once
# from the repository R is configured with; the machine's R uses the
# libraries it has.
#
# Writes one line "<label> <passed> <failed>" per R to the file named by
# argument 1 (a leg that cannot run counts as one failure, a leg without R
# 4.5 at hand is reported as skipped), and each failure, named with its R, to
# that name followed by .failures.
set -uo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
: > "$out"
: > "$out.failures"

# Each leg is built before either is tested: test-other-r.R has the R of
# one leg read what the other's shares, with that leg's build.

# r_version <R binary>: its version, or nothing when it cannot run.
r_version() {
  "$(dirname "$1")/Rscript" --vanilla -e 'cat(as.character(getRversion()))' 2>/dev/null
}

# build_leg <label> <R binary> <extra library or ""> <deps library or "">:
# the packages the tests need, then shmr's build into build/r-lib/R-<version>.
# Fails (and counts the leg as one failure) when the leg cannot be tested.
build_leg() {
  local label=$1 r=$2 extra_lib=$3 deps_lib=$4
  local rscript version lib log
  rscript="$(dirname "$r")/Rscript"
  version=$(r_version "$r") || {
    echo "$label 0 1" >> "$out"; echo "$label: $r cannot run" >> "$out.failures"; return 1; }
  lib="$here/build/r-lib/R-$version"
  log="$here/build/install-R-$version.log"
  rm -rf "$lib" && mkdir -p "$lib"
  local libs="$lib${extra_lib:+:$extra_lib}"
  if [ -n "$deps_lib" ]; then
    echo "R $version: packages for the tests in $deps_lib"
    R_LIBS="$deps_lib" R_LIBS_USER="$deps_lib" USE_BUNDLED_LIBUV=1 RSCRIPT="$rscript" \
      bash tools/install-deps.sh --memshare-estimators || {
      echo "R $version: could not install the packages the tests need"
      echo "$label-$version 0 1" >> "$out"
      echo "$label-$version: could not install the packages the tests need" >> "$out.failures"
      return 1; }
  fi
  echo "R $version: building shmr into $lib"
  if ! env R_LIBS="$libs" ${deps_lib:+"R_LIBS_USER=$deps_lib"} \
       "$r" CMD INSTALL --preclean --no-multiarch -l "$lib" . > "$log" 2>&1; then
    tail -n 40 "$log"
    echo "$label-$version 0 1" >> "$out"
    echo "$label-$version: shmr did not build (see $log)" >> "$out.failures"
    return 1
  fi
  # R CMD check counts a compiler warning in the package's sources against
  # it; so does this, with R's own compiler flags.
  local warnings
  warnings=$(grep -E '^[^ :]+\.(c|cc|cpp|h|hpp):[0-9]+:[0-9]+: warning:' "$log" || true)
  if [ -n "$warnings" ]; then
    echo "$warnings"
    echo "$label-$version-compiler-warnings 0 1" >> "$out"
    echo "$label-$version: compiler warnings while building shmr (see $log)" >> "$out.failures"
  fi
}

# test_leg <label> <R binary> <extra library or ""> <deps library or "">:
# the test suite and the peers' suites against build_leg()'s build.
test_leg() {
  local label=$1 r=$2 extra_lib=$3 deps_lib=$4
  local rscript version lib counts
  rscript="$(dirname "$r")/Rscript"
  version=$(r_version "$r")
  lib="$here/build/r-lib/R-$version"
  local libs="$lib${extra_lib:+:$extra_lib}"
  counts="$here/build/r-counts-$version"
  rm -f "$counts"
  echo "R $version: running the test suite"
  # The session directories of the leg's R processes go here, removed
  # afterwards: R leaves a killed process's behind, and tests kill some.
  local tmp
  tmp=$(mktemp -d /tmp/shmr-tests.XXXXXX)
  env TMPDIR="$tmp" R_LIBS="$libs" ${deps_lib:+"R_LIBS_USER=$deps_lib"} \
    bash tools/run-r-tests.sh "$counts" "$rscript" || true
  if [ -s "$counts" ]; then
    echo "$label-$version $(cat "$counts")" >> "$out"
    sed "s/^/$label-$version: /" "$counts.failures" >> "$out.failures" 2>/dev/null
  else
    echo "$label-$version 0 1" >> "$out"
    echo "$label-$version: the test suite did not report its counts" >> "$out.failures"
  fi
  run_peer_suites "$label-$version" "$rscript" "$libs" "$deps_lib" "$tmp"
  rm -rf "$tmp"
}

# The peers' own test suites against the compatibility layers, with the
# leg's build of shmr (tools/peer-suites.R downloads each peer from the
# repository R is configured with, and skips those that need a newer R).
# Counted as "<label>-peers <expectations passed> <failures not disclosed>".
run_peer_suites() {
  local label=$1 rscript=$2 libs=$3 deps_lib=$4 tmp=$5
  local csv="$here/build/peers-$label.csv" log="$here/build/peers-$label.log"
  rm -f "$csv"
  echo "$label: running the peers' own test suites (log: $log)"
  # They take 1 to 3 minutes; a download or a test that hangs must not take
  # the rest of CI's time.
  timeout --kill-after=30 1200 env TMPDIR="$tmp" R_LIBS="$libs" ${deps_lib:+"R_LIBS_USER=$deps_lib"} \
    "$rscript" tools/peer-suites.R --out "$csv" > "$log" 2>&1
  if [ -s "$csv" ]; then
    # Columns: peer, passed, failed, disclosed, skipped, note (NA: skipped).
    awk -F, -v label="$label-peers" 'NR > 1 && $2 != "NA" { p += $2; f += $3 }
      END { print label, p + 0, f + 0 }' "$csv" >> "$out"
    awk -F, -v label="$label" 'NR > 1 && $2 != "NA" && $3 > 0 {
      gsub(/"/, "", $1); print label ": peer " $1 ": " $3 " failures not disclosed" }' \
      "$csv" >> "$out.failures"
    grep -E '^[a-z]+ +[0-9]+( +[0-9]+){3}$|^[a-z]+ +needs' "$log" | sed "s/^/  /"
  else
    tail -n 20 "$log"
    echo "$label-peers 0 1" >> "$out"
    echo "$label: the peers' test suites did not run (see $log)" >> "$out.failures"
  fi
}

# The machine's R, with the libraries the caller has (R_LIBS, user, site).
machine_leg=("R" "$(command -v "${R:-R}")" "${R_LIBS:-}" "")
machine_built=false
build_leg "${machine_leg[@]}" && machine_built=true

# R 4.5, with a library of the project's own and nothing of the caller's.
r45=""
if [ -f ../shared/tools/r45.sh ]; then
  r45=$(bash ../shared/tools/r45.sh) || r45=""
fi
r45_built=false
if [ -n "$r45" ] && [ -x "$r45" ]; then
  deps="$here/.r-library/$(r_version "$r45")"
  mkdir -p "$deps"
  r45_leg=("R" "$r45" "$deps" "$deps")
  build_leg "${r45_leg[@]}" && r45_built=true
else
  echo "R 4.5: not available here (../shared/tools/r45.sh), skipped"
  echo "R-4.5 skipped" >> "$out"
fi

if $machine_built; then test_leg "${machine_leg[@]}"; fi
if $r45_built; then test_leg "${r45_leg[@]}"; fi
