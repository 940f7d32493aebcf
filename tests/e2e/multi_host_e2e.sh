#!/usr/bin/env bash
# Multi-host end to end without leaving the machine (issue 10, beyond today 1). The test makes
# three hosts of its own: network namespaces h1..h3, each with a veth pair into one bridge, on a
# /24 it creates (10.77.N.0/24; the bridge, in this namespace, is .1 and the hosts .11-.13).
# mpirun runs them over TCP with an rsh agent that enters the namespace (and a UTS namespace, so
# each host has its own hostname and OpenMPI session directory), and the coordinator's cluster
# file names the hosts by address. It checks:
#   1. a job trains across two hosts and SUCCEEDS;
#   2. killing the ranks of one host fails the attempt naming that host and rank, and the retry
#      runs on the two other hosts and SUCCEEDS;
#   3. cutting one host's link (ip link set down) does the same within distributed.timeout_s +
#      5 s, and nothing of the job is left running on the cut-off host afterwards.
#   multi_host_e2e.sh BIN_DIR      (BIN_DIR holds dtrain, dtrain-worker, dtrain-job-shim)
# Exit 77 (skipped) when network namespaces cannot be made (not root, no ip/unshare).
set -uo pipefail
bin=$(realpath "$1")
# shellcheck source=../support/e2e.sh
source "$(dirname "$0")/../support/e2e.sh"
note() { echo "[${SECONDS}s] $*"; }

tag=$$
net=10.77.$(( tag % 200 + 20 ))        # a /24 of our own, so that two runs do not collide
hosts=(h1 h2 h3)
ns_of() { echo "dtmh${tag}$1"; }       # h2 -> dtmh<pid>h2
veth_of() { echo "dv${tag}${1#h}"; }   # h2 -> dv<pid>2 (at most 15 characters)
ip_of() { echo "$net.1${1#h}"; }       # h2 -> 10.77.N.12
bridge=db$tag

if [[ $(id -u) != 0 ]] || ! command -v ip > /dev/null || ! command -v unshare > /dev/null ||
   ! ip netns add "dtmh${tag}probe" 2> /dev/null; then
  echo "SKIP: cannot make network namespaces here (needs root, ip and unshare)"
  exit 77
fi
ip netns del "dtmh${tag}probe"

work=$(mktemp -d /tmp/dtrain_multi_host.XXXXXX)
coordinator_pid=
# Every process in a namespace of ours, ended by pid.
kill_namespace() { local p; for p in $(ip netns pids "$(ns_of "$1")" 2> /dev/null); do kill -9 "$p" 2> /dev/null; done; }
cleanup() {
  [[ -n $coordinator_pid ]] && kill -9 "$coordinator_pid" 2> /dev/null
  pkill -9 -f "$work" 2> /dev/null
  for h in "${hosts[@]}"; do kill_namespace "$h"; ip netns del "$(ns_of "$h")" 2> /dev/null; done
  ip link del "$bridge" 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # a ctest timeout still cleans up

# ---------------------------------------------------------------------------- the hosts
ip link add "$bridge" type bridge && ip link set "$bridge" up &&
  ip addr add "$net.1/24" dev "$bridge" || { fail "cannot make bridge $bridge"; e2e_finish "multi-host e2e"; }
for h in "${hosts[@]}"; do
  ns=$(ns_of "$h")
  ip netns add "$ns" &&
    ip link add "$(veth_of "$h")" type veth peer name eth0 netns "$ns" &&
    ip link set "$(veth_of "$h")" master "$bridge" up &&
    ip -n "$ns" addr add "$(ip_of "$h")/24" dev eth0 &&
    ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up ||
    { fail "cannot make host $h"; e2e_finish "multi-host e2e"; }
done
pass "3 hosts: namespaces $(ns_of h1)..h3 on $net.0/24 (bridge $bridge)"

# The rsh agent: mpirun calls it as `agent HOST COMMAND...`, as it would call ssh.
cat > "$work/rsh-agent" << EOF
#!/usr/bin/env bash
host=\$1; shift
case \$host in
$(for h in "${hosts[@]}"; do echo "  $(ip_of "$h")) ns=$(ns_of "$h") name=$h ;;"; done)
  *) echo "rsh-agent: unknown host '\$host'" >&2; exit 255 ;;
esac
echo "\$(date +%s%3N) \$host \$ns" >> "$work/agent.log"
exec ip netns exec "\$ns" unshare --uts /bin/sh -c "hostname \$name; \$*"
EOF
chmod 700 "$work/rsh-agent"

# What mpirun needs to run across them: the agent, TCP only on our subnet, and a short TCP
# keepalive on its own (OOB) connections, so that a daemon behind a cut link is noticed in
# seconds (the default, 300 s + 9 x 20 s, would leave mpirun hanging for 8 minutes).
export OMPI_MCA_plm_rsh_agent=$work/rsh-agent
export OMPI_MCA_btl=tcp,self OMPI_MCA_pml=ob1
export OMPI_MCA_oob_tcp_if_include=$net.0/24 OMPI_MCA_btl_tcp_if_include=$net.0/24
export OMPI_MCA_oob_tcp_keepalive_time=2 OMPI_MCA_oob_tcp_keepalive_intvl=1
export OMPI_MCA_oob_tcp_keepalive_probes=3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

e2e_token "$work/token"
{
  echo "hosts:"
  for h in "${hosts[@]}"; do echo "  - {name: $(ip_of "$h"), slots: 1}"; done
  printf 'launcher:\n  backend: local-mpirun\n  mpirun: %s\n' "$(command -v mpirun)"
} > "$work/cluster.yaml"

"$bin/dtrain" coordinator --listen 127.0.0.1:0 --port-file "$work/port" \
  --state-dir "$work/state" --token-file "$work/token" --allowed-root "$work" \
  --cluster "$work/cluster.yaml" >> "$work/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
export DTRAIN_ADDRESS=$(cat "$work/port" 2> /dev/null)
[[ -n $DTRAIN_ADDRESS ]] && pass "coordinator listening on $DTRAIN_ADDRESS" ||
  { fail "coordinator did not start"; cat "$work/coordinator.log"; e2e_finish "multi-host e2e"; }

status() { "$bin/dtrain" status "$1" --json; }
field() { status "$1" | py "import json,sys; print(json.load(sys.stdin)['$2'])"; }
wait_state() {  # wait_state ID STATE SECONDS
  for _ in $(seq $(($3 * 5))); do [[ $(field "$1" state) == "$2" ]] && return 0; sleep 0.2; done
  return 1
}
submit() { "$bin/dtrain" submit "$@" --json | py "import json,sys; print(json.load(sys.stdin)['job_id'])"; }
# The first host of a job's placement that is not the first one ("a:1,b:1" -> b).
second_host() { field "$1" placement | py "import sys; print(sys.stdin.read().strip().split(',')[1].split(':')[0])"; }
host_of_ip() { local h; for h in "${hosts[@]}"; do [[ $(ip_of "$h") == "$1" ]] && echo "$h"; done; }
# Waits until the job has written a checkpoint (the retry then resumes from it).
wait_checkpoint() {
  for _ in $(seq 300); do compgen -G "$work/runs/$1/checkpoints/ckpt-*.pt" > /dev/null && return 0; sleep 0.2; done
  return 1
}
# The failure's transition (RUNNING -> PENDING) as "at_ms<TAB>reason".
failure_of() {
  status "$1" | py "
import json,sys
for t in json.load(sys.stdin)['history']:
    if t['from'] == 'RUNNING' and t['to'] in ('PENDING', 'FAILED'):
        print('%d\t%s' % (t['at_ms'], t['reason'])); break"
}

"$bin/dtrain-worker" gen-day-night --out "$work/data" --count 200 --size 32 --seed 3 > /dev/null
timeout_s=10
job_yaml() {  # job_yaml NAME EPOCHS
  cat << YAML
name: $1
task: day_night
data: {path: $work/data, resolution: [16, 16, 3], seed: 1}
model: {conv_channels: [4, 8], hidden_units: [16]}
train: {epochs: $2, batch_size: 32, optimizer: {kind: adam, lr: 0.003}}
distributed: {ranks: 2, timeout_s: $timeout_s}
checkpoint: {every_epochs: 1}
output_dir: $work/runs/$1
YAML
}

# ---------------------------------------------------------------------------- 1. train across hosts
job_yaml across 3 > "$work/across.yaml"
id=$(submit "$work/across.yaml")
note "submitted across"
if wait_state "$id" SUCCEEDED 120; then
  placement=$(field "$id" placement)
  hosts_used=$(cut -f2 -d' ' "$work/agent.log" | sort -u | tr '\n' ' ')
  acc=$(status "$id" | py "import json,sys; print(json.load(sys.stdin)['metrics']['test.accuracy'])")
  [[ $placement == *,* && $(wc -w <<< "$hosts_used") == 2 ]] &&
    pass "job trained across 2 hosts ($placement; daemons started on $hosts_used) and SUCCEEDED, test accuracy $acc" ||
    fail "job ran on '$placement', daemons on '$hosts_used'"
else
  fail "job across hosts ended $(field "$id" state)"; status "$id" | head -c 3000; tail -20 "$work/coordinator.log"
fi

# ---------------------------------------------------------------------------- 2. and 3. failures
# check_failure ID HOST_IP START_MS BOUND_MS WHAT: the attempt failed naming the host and its rank
# within the bound, the retry ran elsewhere and SUCCEEDED.
check_failure() {
  local id=$1 bad=$2 start=$3 bound=$4 what=$5 failure at reason took placement
  for _ in $(seq 150); do [[ $(field "$id" attempt) -ge 2 ]] && break; sleep 0.2; done
  failure=$(failure_of "$id")
  at=${failure%%$'\t'*} reason=${failure#*$'\t'}
  took=$((at - start))
  if [[ $reason == *"failed on host $bad (rank 1)"* && $took -le $bound ]]; then
    pass "$what: attempt 1 failed in $took ms (bound $bound ms): $reason"
  else
    fail "$what: failure after ${took} ms (bound $bound ms), reason: '$reason'"
    tail -30 "$work/state/jobs/$id/attempt-1/output.log"
  fi
  note "$what: failure seen"
  if wait_state "$id" SUCCEEDED 180; then
    note "$what: retry done"
    placement=$(field "$id" placement)
    [[ $placement != *"$bad:"* ]] &&
      pass "$what: retry ran on $placement (not $bad) and SUCCEEDED" ||
      fail "$what: retry ran on $placement, which has the failed host $bad"
  else
    fail "$what: retry ended $(field "$id" state)"; tail -20 "$work/state/jobs/$id/attempt-2/output.log"
  fi
}

# 2. kill -9 of the ranks of one host.
job_yaml killed 12 > "$work/killed.yaml"
id=$(submit "$work/killed.yaml" --max-attempts 2)
wait_state "$id" RUNNING 60 && wait_checkpoint killed || fail "job 'killed' never checkpointed"
note "killed: checkpointed"
bad=$(second_host "$id") && h=$(host_of_ip "$bad")
start=$(date +%s%3N)
for p in $(ip netns pids "$(ns_of "$h")"); do
  [[ $(cat "/proc/$p/comm" 2> /dev/null) == dtrain-worker ]] && kill -9 "$p"
done
check_failure "$id" "$bad" "$start" $(((timeout_s + 5) * 1000)) "ranks of $h killed"

# 3. the link of one host cut mid-run.
job_yaml cut 12 > "$work/cut.yaml"
id=$(submit "$work/cut.yaml" --max-attempts 2)
wait_state "$id" RUNNING 60 && wait_checkpoint cut || fail "job 'cut' never checkpointed"
note "cut: checkpointed"
bad=$(second_host "$id") && h=$(host_of_ip "$bad")
start=$(date +%s%3N)
ip link set "$(veth_of "$h")" down
check_failure "$id" "$bad" "$start" $(((timeout_s + 5) * 1000)) "link of $h cut"
# A cut-off host cannot be told to stop: its daemon (orted) stops its ranks when it loses mpirun
# (the same keepalive), within a few seconds. The daemon itself may outlive them while TCP
# retransmits what it still had to send to mpirun (net.ipv4.tcp_retries2: minutes); it holds no
# slot or device, so only ranks left running are orphans. Name them, then end everything.
ranks_left=""
for _ in $(seq 1 20); do
  ranks_left=$(for p in $(ip netns pids "$(ns_of "$h")"); do
    comm=$(cat "/proc/$p/comm" 2> /dev/null) || continue
    [[ $comm == orted ]] || echo "$p:$comm"
  done | tr '\n' ' ')
  [[ -z $ranks_left ]] && break
  sleep 0.5
done
[[ -z $ranks_left ]] && pass "no rank left running on the cut-off host $h" ||
  fail "ranks left running on the cut-off host $h after 10 s: $ranks_left"
kill_namespace "$h"
ip link set "$(veth_of "$h")" up

e2e_finish "multi-host e2e"
