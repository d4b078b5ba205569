#!/usr/bin/env bash
# Runs the testthat suite against the installed package, one file at a time,
# and writes "<passed> <failed>" (counted per test) to the file named by
# argument 1, and one line per failure (file, test, where, the message) to
# that name followed by .failures. The rest of the arguments are the command
# that runs Rscript (for example `Rscript`, or `env LD_PRELOAD=... Rscript`).
#
# Each file runs in an R process of its own, in a session of its own, so that
# a file that hangs or crashes costs one failure and its own time, never the
# rest of the suite: after SHMR_TEST_FILE_SECONDS (600 by default, 6 hours
# with SHMR_LONG_TESTS; the slowest file takes about 2 minutes) the file's test, its last expectation,
# its processes and a backtrace of its R process are printed, and every
# process of its session is killed. Processes a file leaves behind (in its
# session, or simulated hosts, which have sessions of their own) are listed
# and killed before the next file starts. SHMR_TEST_FILTER (a regular
# expression) runs only the files whose names match.
set -uo pipefail
out=$1
shift
# The long variants (SHMR_LONG_TESTS) take hours; so may files under the
# sanitizers (tools/run-asan-tests.sh sets its own limit).
default_limit=600
[ -n "${SHMR_LONG_TESTS:-}" ] && default_limit=21600
limit=${SHMR_TEST_FILE_SECONDS:-$default_limit}
only=${SHMR_TEST_FILTER:-}  # a regular expression: only the files whose names match
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
status=$(mktemp)
pid=""
trap 'rm -f "$status" "$status.partial"' EXIT
# The file's R process is in a session of its own, out of reach of a Ctrl-C
# at the terminal: it is stopped with this script.
trap '[ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null; exit 130' INT TERM

# The simulated hosts of tests/testthat/helper-hosts.R: processes in a mount
# namespace whose /dev/shm is a tmpfs named shmr-sim-<host>.
simulated_host_processes() {
  grep -l " shmr-sim-" /proc/[0-9]*/mountinfo 2>/dev/null | cut -d/ -f3 | sort || true
}

# Zombies aside: they are gone already, waiting for init to reap them.
session_processes() {
  ps -o pid=,stat= -s "$1" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }' || true
}

report_hung_file() {
  local name=$1 pid=$2
  echo
  echo "!! $name did not finish within $limit s; it is stopped and counts as one failure"
  sed -e 's/^/!!   /' "$status" 2>/dev/null
  echo "!! its processes:"
  ps -o pid=,ppid=,stat=,etime=,args= -s "$pid" 2>/dev/null | cut -c1-200 | sed -e 's/^/!!   /'
  if command -v gdb > /dev/null; then
    echo "!! backtrace of its R process:"
    timeout 60 gdb -p "$pid" -batch -ex "bt 40" 2>/dev/null | grep '^#' | sed -e 's/^/!!   /'
  fi
}

# Hosts that were there before the file started are someone else's.
end_leftovers() {
  local name=$1 session=$2 hosts_before=$3 pids
  pids="$(session_processes "$session") $(comm -13 <(echo "$hosts_before") <(simulated_host_processes))"
  pids=$(echo $pids)
  [ -z "$pids" ] && return
  echo "-- $name left processes running; ending them:"
  ps -o pid=,etime=,args= -p "${pids// /,}" 2>/dev/null | cut -c1-160 | sed -e 's/^/--   /'
  kill -TERM $pids 2>/dev/null
  sleep 1
  kill -KILL $pids 2>/dev/null
  return 0
}

# GNU env (coreutils 8.31 and later) can put a signal back to its default;
# without it the tests that need SIGINT skip.
default_sigint=()
env --default-signal=INT true 2> /dev/null && default_sigint=(env --default-signal=INT)

passed=0
failed=0
failures="$out.failures"
: > "$failures"
for path in tests/testthat/test-*.R; do
  name=$(basename "$path")
  [[ -n "$only" && ! "$name" =~ $only ]] && continue
  rm -f "$status"
  hosts_before=$(simulated_host_processes)
  # Not a process group leader (no job control here), so setsid makes the
  # new session in this process: $! is the session's id. A command started
  # with & here begins with SIGINT ignored, and R 4.5 would keep it so: the
  # tests that interrupt R processes need it back at its default.
  setsid ${default_sigint[@]+"${default_sigint[@]}"} "$@" --vanilla tools/run-r-test-file.R "$name" "$status" &
  pid=$!
  deadline=$((SECONDS + limit))
  hung=false
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      hung=true
      report_hung_file "$name" "$pid"
      break
    fi
    sleep 0.2
  done
  if $hung; then
    kill -TERM -- "-$pid" 2>/dev/null
    sleep 2
    kill -KILL -- "-$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  rc=$?
  end_leftovers "$name" "$pid" "$hosts_before"
  file_passed=$(awk '$1 == "passed" { print $2 }' "$status" 2>/dev/null)
  file_failed=$(awk '$1 == "failed" { print $2 }' "$status" 2>/dev/null)
  passed=$((passed + ${file_passed:-0}))
  failed=$((failed + ${file_failed:-0}))
  sed -n "s/^failure /$name: /p" "$status" 2>/dev/null >> "$failures"
  if ! grep -qx complete "$status" 2>/dev/null; then
    failed=$((failed + 1))
    $hung || echo "!! $name ended before its end (exit status $rc); counted as one failure"
    where=$(sed -n 's/^test //p' "$status" 2>/dev/null)
    if $hung; then
      echo "$name: stopped after $limit s, in test ${where:-(unknown)}" >> "$failures"
    else
      echo "$name: ended before its end (exit status $rc), in test ${where:-(unknown)}" >> "$failures"
    fi
  fi
done
echo "$passed $failed" > "$out"
