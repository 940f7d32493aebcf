#!/usr/bin/env bash
# Prints the Debian packages that own the shared libraries the given binaries load (ldd), one
# per line: what a runtime image must install for them, and nothing it does not need.
#   deploy/docker/runtime-packages.sh BINARY...
# Libraries no package owns (built alongside) are reported on stderr, and the exit status is 1.
set -euo pipefail
status=0
while read -r lib; do
  # Debian registers some libraries under /lib and others under /usr/lib: ask by the last
  # directory (the multiarch triplet) and the file name.
  pattern="*/$(basename "$(dirname "$lib")")/$(basename "$lib")"
  if owner=$(dpkg -S "$pattern" 2>/dev/null | grep -v -- '-dev:' | head -n1) && [[ -n $owner ]]; then
    echo "${owner%%:*}"
  else
    echo "runtime-packages: no package owns $lib" >&2
    status=1
  fi
done < <(ldd "$@" | awk '/=> \//{print $3}' | sort -u)
exit $status
