#!/usr/bin/env bash
# Stand-in for dtrain-worker in launcher tests: behaves as the "spec" file says.
#   succeed    print a progress line and exit 0
#   fail_rank1 rank 1 reports a failure like dtrain-worker does and exits 3; others wait
#   sleep      every rank starts a child process and waits (cancel tests)
rank=${OMPI_COMM_WORLD_RANK:-0}
mode=$(cat "$1")
case "$mode" in
  succeed)
    echo "{\"event\":\"finished\",\"job\":\"fake\",\"rank\":$rank,\"world_size\":2}"
    echo "rank $rank done"
    exit 0 ;;
  fail_rank1)
    if [[ $rank == 1 ]]; then
      echo "[fake] rank 1: error: INTERNAL: something broke" >&2
      echo "{\"event\":\"failed\",\"exit_code\":3,\"job\":\"fake\",\"message\":\"boom\",\"rank\":1,\"world_size\":2}"
      exit 3
    fi
    sleep 30 ;;
  sleep)
    sleep 300 &
    wait ;;
esac
