#!/usr/bin/env bash
# `make demo`: start the local stack with two Kafka clusters, load the guide's example services
# (and the same pipeline's services of the second cluster, dev-2), run demo traffic on both
# clusters (a consumer that keeps up, a slow one, a stopped one on each) while `loomctl lag collect`
# samples every cluster, then show how loomctl tells them apart, and run the guide's monitoring queries.
# The stack keeps running afterwards; the traffic and the collector never outlive the script.
set -euo pipefail
cd "$(dirname "$0")/.."
loomctl=.venv/bin/loomctl

# The collector samples the running traffic for SAMPLE_SECONDS before the lag is judged over
# WINDOW; a status needs samples spanning at least half its window, so the window stays short.
SAMPLE_SECONDS=${DEMO_SAMPLE_SECONDS:-32}
WINDOW=${DEMO_WINDOW:-30s}
RATE=${DEMO_RATE:-200}
RATE_2=${DEMO_RATE_2:-$((RATE / 2))}  # the second cluster's traffic: the same pipeline at another pace

section() { echo; echo "== $*"; }

work=$(mktemp -d)
traffic_pid=""
traffic2_pid=""
collector_pid=""
node_pid=""

stop_pid() {  # SIGTERM one background process of ours and wait for it (both stop cleanly on TERM)
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

wait_for() {  # wait_for LOG TEXT PID WHAT: until LOG holds TEXT; the demo ends if PID (WHAT) exits first
  local log=$1 text=$2 pid=$3 what=$4
  for _ in $(seq 1 150); do
    grep -q "$text" "$log" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      echo "demo: $what ended early" >&2
      exit 1
    fi
    sleep 0.2
  done
}

cleanup() {
  stop_pid "$collector_pid"
  stop_pid "$node_pid"
  stop_pid "$traffic_pid"
  stop_pid "$traffic2_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# DEMO_DIR: run on a stack of its own instead of the default one (~/.local/state/loomctl/dev).
dir_args=()
[ -z "${DEMO_DIR:-}" ] || dir_args=(--dir "$DEMO_DIR")

# Two Kafka clusters beside the one PostgreSQL: the first is the "default" cluster (the one of
# LOOM_KAFKA_BOOTSTRAP_SERVERS), the second is registered as cluster "dev-2".
$loomctl dev up "${dir_args[@]}" --clusters 2
eval "$($loomctl dev env "${dir_args[@]}")"

section "loomctl db upgrade (a stack that was already running may predate the newest migration)"
$loomctl db upgrade

section "loomctl db current"
$loomctl db current

section "loomctl cluster list (one loomctl over many Kafka clusters: dev up --clusters 2 registered dev-2)"
$loomctl cluster list

section "loomctl cluster check (what each cluster can do, asked of the cluster itself)"
$loomctl cluster check

section "loomctl config import examples/pipeline-services.yaml (the guide's example services)"
$loomctl config import examples/pipeline-services.yaml --yes

section "loomctl config import examples/dev-2-services.yaml (the same pipeline's services on cluster dev-2)"
echo "A group id names one group on one cluster, so dev-2's services have names and groups of their own."
$loomctl config import examples/dev-2-services.yaml --yes

section "loomctl config list"
$loomctl config list

section "lag objectives: loomctl config set SERVICE lag_slo_seconds=N (a service attribute, not a client setting)"
$loomctl config set timescale-writer lag_slo_seconds=30 --reason "dashboards may run half a minute late"
$loomctl config set speech-processor lag_slo_seconds=900 --reason "transcripts within the 15 minutes a poll may take"
$loomctl config set motion-event-filter lag_slo_seconds=10 --reason "motion alerts within ten seconds"

section "Kafka 4: timescale-writer runs the consumer group protocol (KIP-848): loomctl config push --yes"
echo "The broker assigns its partitions and owns its session timeout and heartbeat, as group configs;"
echo "loomctl.loader gives its consumer group.protocol=consumer and leaves those out. Push the table's values:"
$loomctl config push timescale-writer --yes

section "loomctl dev traffic --rate $RATE (in the background)"
echo "A producer writes $RATE messages/s into device.audio.raw and device.sensor.accelerometer.raw."
echo "Three consumers built by loomctl.loader from their configs read them:"
echo "  timescale-writer     keeps up: large batches, commits after each write   -> OK  (consumer protocol)"
echo "  speech-processor     slow: a member per partition, each 5x too slow      -> WARN"
echo "  motion-event-filter  stopped: consumed 3 batches, committed, exited     -> STOP"
# Long enough for the whole show; the script stops it (SIGTERM) right after the lag is shown.
$loomctl dev traffic "${dir_args[@]}" --duration 10m --rate "$RATE" >"$work/traffic.out" 2>"$work/traffic.log" &
traffic_pid=$!

section "loomctl dev traffic --cluster dev-2 --service-prefix dev2- --prefix dev2. --rate $RATE_2 (in the background)"
echo "The same pipeline on the second cluster, for the services of that cluster: a producer writes $RATE_2 messages/s"
echo "into dev2.device.audio.raw and dev2.device.sensor.accelerometer.raw on dev-2, read by"
echo "  dev2-timescale-writer     keeps up (classic group protocol)              -> OK"
echo "  dev2-speech-processor     slow                                           -> WARN"
echo "  dev2-motion-event-filter  stopped                                        -> STOP"
$loomctl dev traffic "${dir_args[@]}" --cluster dev-2 --service-prefix dev2- --prefix dev2. --duration 10m --rate "$RATE_2" \
  >"$work/traffic2.out" 2>"$work/traffic2.log" &
traffic2_pid=$!

# Start sampling once every consumer has committed (and the stopped one has exited), so each
# sample in the status window has a committed offset to compare with the last one.
wait_for "$work/traffic.log" "every consumer has committed offsets" "$traffic_pid" "loomctl dev traffic"
wait_for "$work/traffic2.log" "every consumer has committed offsets" "$traffic2_pid" "loomctl dev traffic --cluster dev-2"
sed 's/^/  traffic: /' "$work/traffic.log"
sed 's/^/  traffic dev-2: /' "$work/traffic2.log"

section "a Node service: geocoding-processor built by @loomctl/consumer-config (node/, KafkaJS)"
echo "geocoding-processor (io-bound profile: max_poll_records=10) reads device.sensor.accelerometer.raw from Node;"
echo "the package cuts KafkaJS's batches to max_poll_records and records each one in consumer_processing_metrics."
(cd node && npm ci --no-audit --no-fund --silent && npm run build --silent >/dev/null)
node node/examples/demo-consumer.js >"$work/node.out" 2>"$work/node.log" &
node_pid=$!
wait_for "$work/node.log" "consuming" "$node_pid" "the Node consumer"
sed 's/^/  node: /' "$work/node.log"

section "loomctl lag collect --interval 2s --listen (in the background)"
$loomctl lag collect --interval 2s --listen "127.0.0.1:${DEMO_METRICS_PORT:-0}" --window "$WINDOW" 2>"$work/collector.log" &
collector_pid=$!
started=$SECONDS

sleep $((SAMPLE_SECONDS * 2 / 3))
section "loomctl lag show --by service --window $WINDOW (after $((SECONDS - started)) s of samples)"
$loomctl lag show --by service --window "$WINDOW"

sleep $((SAMPLE_SECONDS - (SECONDS - started) > 0 ? SAMPLE_SECONDS - (SECONDS - started) : 0))
# Everything below is measured while the traffic still runs: once it stops, the lag stops
# growing and the slow consumer would no longer look slow.
section "loomctl lag show --by service --window $WINDOW (after $((SECONDS - started)) s of samples)"
$loomctl lag show --by service --window "$WINDOW"

section "loomctl lag status --window $WINDOW"
$loomctl lag status --window "$WINDOW"

section "loomctl lag slo --window $WINDOW (each service against its lag objective, worst first)"
$loomctl lag slo --window "$WINDOW"

section "loomctl config drift timescale-writer speech-processor motion-event-filter dev2-timescale-writer (each against its own cluster)"
$loomctl config drift timescale-writer speech-processor motion-event-filter dev2-timescale-writer

section "loomctl config readiness (KIP-1274: what stands between each classic service and the consumer protocol)"
$loomctl config readiness

section "the collector's Prometheus and Burrow-compatible endpoint (lag collect --listen)"
endpoint=$(sed -n 's#.*serving http://\([^/]*\)/metrics.*#\1#p' "$work/collector.log" | head -1)
echo "Prometheus scrapes http://$endpoint/metrics; Burrow clients read http://$endpoint/v3/kafka (a cluster each)"
echo "(alert rules: examples/prometheus/loomctl-rules.yml; Grafana dashboard: examples/grafana/loomctl.json)"
.venv/bin/python - "$endpoint" timescale-writer speech-processor motion-event-filter \
  dev2-timescale-writer dev2-speech-processor dev2-motion-event-filter <<'PY'
import json, re, sys, urllib.error, urllib.request

endpoint, services = sys.argv[1], sys.argv[2:]

def get(path):
    try:
        with urllib.request.urlopen(f"http://{endpoint}{path}", timeout=5) as response:
            return response.read()
    except urllib.error.HTTPError as error:  # Burrow's 404s carry a body too
        return error.read()

metrics = get("/metrics").decode().splitlines()
# service -> (cluster, group): each group is exported under the cluster it lives on
groups = {m["service"]: (m["cluster"], m["group"]) for line in metrics if line.startswith("loomctl_group_info{")
          for m in [re.search(r'cluster_name="(?P<cluster>[^"]*)".*group="(?P<group>[^"]*)".*service="(?P<service>[^"]*)"', line)]
          if m}
shown = ("kafka_consumergroup_group_sum_lag{", "kafka_consumergroup_group_max_lag_seconds{", "loomctl_group_status_code{")
print("/metrics (a few of its lines):")
for line in metrics:
    if line.startswith(shown) and any(s in groups and f'cluster_name="{groups[s][0]}",group="{groups[s][1]}"' in line
                                      for s in services) or line.startswith(
            ("loomctl_collector_up{", "loomctl_collector_writer{", "loomctl_collector_cycle_duration_seconds{")):
        print(f"  {line}")
print(f"Burrow clusters (GET /v3/kafka): {', '.join(json.loads(get('/v3/kafka'))['clusters'])}")
print("Burrow status (GET /v3/kafka/CLUSTER/consumer/GROUP/status):")
for service in services:
    cluster, group = groups.get(service, ("default", service))
    s = json.loads(get(f"/v3/kafka/{cluster}/consumer/{group}/status"))["status"]
    print(f"  {cluster:8} {service:25} {s['status']:8} totallag={s['totallag']:<7} partitions={s['partition_count']} "
          f"not OK={len(s['partitions'])} maxlag={s['maxlag']['current_lag'] if s['maxlag'] else None}")
PY

# v_consumer_alerts and v_consumer_performance_monitor judge the guide's 15 minutes; --window
# judges the demo's half minute of samples instead (psql users: SET loomctl.status_window = '30s').
section "loomctl alerts --window $WINDOW"
$loomctl alerts --window "$WINDOW"

section "loomctl recommend --window $WINDOW"
$loomctl recommend --window "$WINDOW"

section "loomctl metrics show geocoding-processor --since 10m --bucket 1m (recorded by the Node service)"
$loomctl metrics show geocoding-processor --since 10m --bucket 1m

section "loomctl metrics show speech-processor --since 10m --bucket 1m"
$loomctl metrics show speech-processor --since 10m --bucket 1m

section "the guide's monitoring queries"
psql "$LOOM_DATABASE_URL" -X -e -P pager=off \
  -c "SELECT service_name, max_poll_records, session_timeout_ms, description FROM pipeline_consumer_configs ORDER BY service_name;" \
  -c "SELECT service_name, status, total_lag, avg_lag, lag_change, messages_per_second, error_rate FROM v_consumer_performance_monitor ORDER BY avg_lag DESC NULLS LAST;" \
  -c "SELECT * FROM v_consumer_alerts;" \
  -c "SELECT * FROM v_consumer_performance_history WHERE service_name = 'speech-processor' AND timestamp > NOW() - INTERVAL '1 hour';" \
  -c "SELECT avg(processing_time_ms), avg(messages_per_second) FROM consumer_processing_metrics WHERE service_name = 'speech-processor' AND timestamp > NOW() - INTERVAL '1 hour';" \
  -c "SELECT timestamp, lag FROM consumer_lag_history WHERE service_name = 'speech-processor' ORDER BY timestamp DESC LIMIT 6;" \
  -c '\x on' \
  -c "SELECT * FROM v_consumer_performance_monitor WHERE service_name = 'speech-processor';" \
  -c '\x off' \
  -c "SELECT * FROM v_partition_efficiency;" \
  -c "SELECT generate_partition_update_script();"

section "stopping the collector and the traffic"
stop_pid "$collector_pid"
collector_pid=""
stop_pid "$traffic_pid"
traffic_pid=""
stop_pid "$traffic2_pid"
traffic2_pid=""
tail -n 2 "$work/traffic.log" | sed 's/^/  traffic: /'
tail -n 2 "$work/traffic2.log" | sed 's/^/  traffic dev-2: /'
cat "$work/traffic.out"
cat "$work/traffic2.out"
stop_pid "$node_pid"
node_pid=""
cat "$work/node.out"

# partitions: grow the topic the slow service cannot keep up with, from the measured load
section "loomctl partitions recommend --window 5m (every cluster: a topic of each is its own)"
$loomctl partitions recommend --window 5m

section "loomctl partitions recommend --cluster default --window 5m --write (plan and apply then work on that cluster)"
$loomctl partitions recommend --cluster default --window 5m --write

section "loomctl partitions plan"
$loomctl partitions plan

section "loomctl partitions apply --yes (refused: a consumer with auto_offset_reset=latest would miss the new partitions' first records)"
$loomctl partitions apply --yes || true

section "loomctl config set speech-processor auto_offset_reset=earliest, then loomctl partitions apply --yes"
$loomctl config set speech-processor auto_offset_reset=earliest --reason "read new partitions from their start"
$loomctl partitions apply --yes

section "loomctl partitions list --applied"
$loomctl partitions list --applied

echo
echo "The stack keeps running. Try it in your shell:"
echo "  eval \"\$($loomctl dev env)\" && $loomctl lag show"
echo "  $loomctl dev traffic --duration 2m &    # more traffic; $loomctl lag collect --interval 5s to sample it"
echo "  $loomctl dev traffic --cluster dev-2 --service-prefix dev2- --prefix dev2. --duration 2m &    # on dev-2"
echo "Stop it with: $loomctl dev down"
