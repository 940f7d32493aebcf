#!/usr/bin/env bash
# Stand-in for dtrain-worker in the queue e2e (queue_holds_e2e.sh): what it does depends on the
# job's name in the spec it is given (argument 1), so that the coordinator's spec checks pass.
#   fail-*   report a failure like dtrain-worker does and exit 3
#   slow-*   run for 3 seconds, then succeed
#   asha-*   4 epochs whose eval.accuracy is the spec's train.optimizer.lr; a higher lr runs its
#            epochs faster ((1 - lr) * 4 s each), so the better trials report first
#   else     succeed at once
spec=$1
name=$(sed -n 's/^name: *//p' "$spec" | head -1)
echo "{\"event\":\"started\",\"job\":\"$name\",\"rank\":${OMPI_COMM_WORLD_RANK:-0},\"world_size\":1}"
case "$name" in
  fail-*)
    echo "[fake] rank 0: error: INTERNAL: $name fails on purpose" >&2
    exit 3 ;;
  slow-*)
    sleep 3 ;;
  asha-*)
    lr=$(sed -n 's/^ *lr: *//p' "$spec" | head -1)
    pause=$(awk -v lr="$lr" 'BEGIN { printf "%.2f", (1 - lr) * 4 }')
    for epoch in 1 2 3 4; do
      sleep "$pause"
      echo "{\"event\":\"epoch\",\"job\":\"$name\",\"rank\":0,\"world_size\":1,\"epoch\":$epoch,\"epochs\":4,\"train_loss\":1,\"seconds\":1,\"metrics\":{\"accuracy\":$lr}}"
    done ;;
esac
echo "{\"event\":\"finished\",\"job\":\"$name\",\"rank\":0,\"world_size\":1}"
exit 0
