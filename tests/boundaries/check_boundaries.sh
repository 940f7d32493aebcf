#!/usr/bin/env bash
# Checks the dependency boundaries of GUIDE §1: which binaries may link what, and which folders
# may include headers of which others. Exits 0 when every rule holds, 1 when one is broken (each
# violation on its own line, naming the binary and library or the file:line and include), 2 on
# bad usage or a binary that is missing.
#
#   check_boundaries.sh [--binary PATH GLOBS]... [--binary-needed PATH GLOBS]...
#                       [--sources ROOT [--no-include DIR PREFIX]...]
#
# --binary PATH GLOBS   PATH must not load a shared library matching any of GLOBS (a comma-
#                       separated list of file-name globs such as "libtorch*,libc10*"), neither
#                       directly (readelf NEEDED) nor through another library (ldd).
# --binary-needed PATH GLOBS   the same for PATH's own NEEDED entries only, for a library that
#                       a permitted dependency may load itself (Debian's libtorch_cpu loads
#                       libprotobuf; the worker's own code must not link it).
# --sources ROOT        the source tree that --no-include rules are relative to.
# --no-include DIR PREFIX   no C/C++ file under ROOT/DIR may #include "PREFIX...".
#
# tests/CMakeLists.txt runs it on the binaries the build configured; self_test.sh proves that it
# fails on a broken tree and a binary that links what it must not.
set -u

usage() {
  sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

binaries=()
globs=()
scopes=()  # "all" (ldd, transitive) or "needed" (readelf -d only)
sources=""
include_dirs=()
include_prefixes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binary|--binary-needed)
      [ $# -ge 3 ] || usage
      binaries+=("$2")
      globs+=("$3")
      if [ "$1" = --binary ]; then scopes+=(all); else scopes+=(needed); fi
      shift 3 ;;
    --sources)
      [ $# -ge 2 ] || usage
      sources="$2"
      shift 2 ;;
    --no-include)
      [ $# -ge 3 ] || usage
      include_dirs+=("$2")
      include_prefixes+=("$3")
      shift 3 ;;
    -h|--help) usage ;;
    *) echo "check_boundaries: unknown argument '$1'" >&2; usage ;;
  esac
done
if [ ${#include_dirs[@]} -gt 0 ] && [ -z "$sources" ]; then
  echo "check_boundaries: --no-include needs --sources ROOT" >&2
  exit 2
fi

violations=0
checks=0
violation() {
  echo "BOUNDARY VIOLATION: $*"
  violations=$((violations + 1))
}

# "name path" for every library the dynamic loader would load for $1 (transitively).
loaded_libraries() {
  # ldd prints "name => path (addr)", "name => not found", or "path (addr)" for the loader.
  ldd "$1" 2>/dev/null | awk '$2 == "=>" { print $1, ($3 == "not" ? "" : $3) }'
}

matches_any() {  # matches_any NAME GLOBS
  local name="$1" glob
  local IFS=','
  for glob in $2; do
    # shellcheck disable=SC2053  # a glob on purpose
    [[ "$name" == $glob ]] && return 0
  done
  return 1
}

check_binary() {  # check_binary PATH GLOBS all|needed
  local binary="$1" forbidden="$2" scope="$3" label
  label="$(basename "$binary")"
  if [ ! -f "$binary" ]; then
    echo "check_boundaries: $binary does not exist (build it first)" >&2
    exit 2
  fi
  if ! readelf -h "$binary" >/dev/null 2>&1; then
    echo "check_boundaries: $binary is not an ELF file" >&2
    exit 2
  fi
  checks=$((checks + 1))
  local direct
  direct="$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
  local name
  while read -r name _; do
    [ -n "$name" ] || continue
    matches_any "$name" "$forbidden" || continue
    if grep -qxF "$name" <<<"$direct"; then
      continue  # reported below, with the NEEDED entries
    elif [ "$scope" = all ]; then
      # Name the direct dependency that drags it in, so the fix is obvious.
      local via="" dep dep_path
      while read -r dep dep_path; do
        grep -qxF "$dep" <<<"$direct" || continue
        [ -n "$dep_path" ] || continue
        if ldd "$dep_path" 2>/dev/null | awk '{ print $1 }' | grep -qxF "$name"; then
          via="$dep"
          break
        fi
      done < <(loaded_libraries "$binary")
      violation "$label links $name (forbidden: $forbidden; loaded through ${via:-another library})"
    fi
  done < <(loaded_libraries "$binary")
  while read -r name; do
    [ -n "$name" ] || continue
    matches_any "$name" "$forbidden" || continue
    violation "$label links $name (forbidden: $forbidden; a NEEDED entry of $binary)"
  done <<<"$direct"
}

check_includes() {  # check_includes DIR PREFIX
  local dir="$1" prefix="$2"
  if [ ! -d "$sources/$dir" ]; then
    echo "check_boundaries: $sources/$dir is not a directory" >&2
    exit 2
  fi
  checks=$((checks + 1))
  local file line text
  # grep -n prints "file:line:text"; the files are found relative to ROOT so messages are too.
  while IFS=: read -r file line text; do
    local header
    header="$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]*)[">].*/\1/' <<<"$text")"
    violation "$file:$line: includes \"$header\" ($dir/ must not include $prefix headers)"
  done < <(cd "$sources" && grep -rnE --include='*.h' --include='*.hpp' --include='*.cc' \
             --include='*.cpp' --include='*.c' \
             "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]${prefix//./\\.}" "$dir" | sort)
}

for i in "${!binaries[@]}"; do
  check_binary "${binaries[$i]}" "${globs[$i]}" "${scopes[$i]}"
done
for i in "${!include_dirs[@]}"; do
  check_includes "${include_dirs[$i]}" "${include_prefixes[$i]}"
done

if [ "$checks" -eq 0 ]; then
  echo "check_boundaries: nothing to check" >&2
  exit 2
fi
if [ "$violations" -gt 0 ]; then
  echo "$violations boundary violation(s); see GUIDE §1 for which part may depend on which."
  exit 1
fi
echo "boundaries hold ($checks rule(s) checked)"
