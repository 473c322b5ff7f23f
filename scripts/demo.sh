#!/usr/bin/env bash
# `make demo`: start the local stack, migrate, and show the guide's monitoring queries.
set -euo pipefail
cd "$(dirname "$0")/.."
loomctl=.venv/bin/loomctl

$loomctl dev up
eval "$($loomctl dev env)"

echo
echo "== loomctl db current"
$loomctl db current

echo
echo "== loomctl config import examples/pipeline-services.yaml (the guide's example services)"
$loomctl config import examples/pipeline-services.yaml --yes

echo
echo "== loomctl config list"
$loomctl config list

echo
echo "== the guide's monitoring queries"
psql "$LOOM_DATABASE_URL" -X -P pager=off \
  -c "SELECT service_name, max_poll_records, session_timeout_ms, description FROM pipeline_consumer_configs ORDER BY service_name;" \
  -c "SELECT * FROM v_consumer_performance_monitor ORDER BY avg_lag DESC;" \
  -c "SELECT * FROM v_consumer_alerts;" \
  -c "SELECT * FROM v_partition_efficiency;" \
  -c "SELECT generate_partition_update_script();"

echo
echo "The stack keeps running. Try it in your shell:"
echo "  eval \"\$($loomctl dev env)\" && $loomctl db current"
echo "Stop it with: $loomctl dev down"
