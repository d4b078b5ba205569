#!/usr/bin/env bash
# Prints the name of a clang++ that can build libFuzzer targets with
# AddressSanitizer and UBSan; installs clang and its runtime libraries from
# Debian with apt-get when there is none. Used by `make fuzz`.
set -euo pipefail

can_fuzz() {
  local cxx=$1 dir
  command -v "$cxx" >/dev/null 2>&1 || return 1
  dir=$(mktemp -d)
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' > "$dir/probe.cpp"
  if "$cxx" -fsanitize=fuzzer,address,undefined "$dir/probe.cpp" -o "$dir/probe" >/dev/null 2>&1; then
    rm -rf "$dir"
    return 0
  fi
  rm -rf "$dir"
  return 1
}

find_clang() {
  local cxx
  for cxx in "${FUZZ_CXX:-}" clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    [ -n "$cxx" ] && can_fuzz "$cxx" && { echo "$cxx"; return 0; }
  done
  return 1
}

if find_clang; then exit 0; fi

echo "install-clang: installing clang and libclang-rt-dev with apt-get" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
{
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q clang libclang-rt-dev
} >&2
find_clang || { echo "install-clang: no clang++ with libFuzzer after installing" >&2; exit 1; }
