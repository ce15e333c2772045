# Sourced by the load and counting scripts (through scripts/lib/peers.sh, and by
# scripts/load-introspect.sh directly): building what they measure, and checking what they ran.
# No side effects when sourced; run from the repository's root.

# Builds in release what a script runs and PORTVAKT_BIN and FLOOR_DIR do not replace: the
# portvakt binary unless PORTVAKT_BIN is set, the examples unless FLOOR_DIR is. $@: cargo
# build's own further arguments, then --, then the examples' names. Variables set before the
# call (CARGO_PROFILE_...) reach cargo.
build_unless_given() {
  local cargo_args=() targets=() example
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    cargo_args+=("$1")
    shift
  done
  shift
  [ -n "${PORTVAKT_BIN:-}" ] || targets+=(--bin portvakt)
  if [ -z "${FLOOR_DIR:-}" ]; then
    for example in "$@"; do targets+=(--example "$example"); done
  fi
  [ ${#targets[@]} = 0 ] || cargo build --release -q -p portvakt-cli "${cargo_args[@]}" "${targets[@]}"
}

executables() { # $@: the programs a script will run; exits 2 naming the first that is not one
  local exe
  for exe in "$@"; do
    [ -x "$exe" ] || { echo "error: $exe is not an executable (check PORTVAKT_BIN and FLOOR_DIR)" >&2; exit 2; }
  done
}

cpu_ticks() { # $1: a pid -> its user + system CPU time so far, in clock ticks (getconf CLK_TCK a second)
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

wrk_clean() { # $1: wrk's output file, $2: what ran; exits 1 with that output when wrk saw errors
  if grep -qE "Non-2xx|Socket errors" "$1"; then
    cat "$1" >&2
    echo "FAILED: $2: wrk saw errors" >&2
    exit 1
  fi
}
