#!/usr/bin/env bash
# Builds and starts handoverd on a throwaway SQLite database, feeds it a few
# requests (one signed webhook, one badly signed) so the labelled metrics
# exist, scrapes /metrics and fails unless `promtool check metrics` prints
# nothing and the expected families are there. Usage: bash scripts/check-metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/local/go/bin"
for tool in go curl promtool openssl; do
  command -v "$tool" >/dev/null || { echo "check-metrics: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "check-metrics: FAIL: $*" >&2
  if [ -s "$tmp/handoverd.log" ]; then echo "--- handoverd log (last 20 lines)" >&2; tail -n 20 "$tmp/handoverd.log" >&2; fi
  exit 1
}

CGO_ENABLED=0 go build -o "$tmp/handoverd" ./cmd/handoverd

# A port nothing answers on (bash's /dev/tcp connect fails), not a privileged one.
port=
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port found"
base="http://127.0.0.1:$port"

# The Graph URL points at a closed local port so nothing can leave the machine.
cat >"$tmp/handoverd.yaml" <<EOF
listen: 127.0.0.1:$port
database: sqlite://$tmp/h.db
graph: {url: "http://127.0.0.1:9/"}
app: {id: "111", secret: s, verify_token: v}
pages: [{id: "1001", access_token: t, default_app: bot, bot_app_id: "222", client_id: 1}]
log: {level: warn}
EOF

"$tmp/handoverd" serve --config "$tmp/handoverd.yaml" >"$tmp/handoverd.log" 2>&1 &
pid=$!

ready=
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || fail "handoverd exited before it was ready"
  if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || fail "handoverd not ready on $base/readyz after 10 s"

# One webhook signed with the app secret ("s"), one with a wrong signature.
now_ms=$(( $(date +%s) * 1000 ))
body='{"object":"page","entry":[{"id":"1001","time":'$now_ms',"messaging":[{"sender":{"id":"5001"},"recipient":{"id":"1001"},"timestamp":'$now_ms',"message":{"mid":"m.check-metrics","text":"hi"}}]}]}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac s | awk '{print $NF}')
code=$(curl -sS -o "$tmp/webhook.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body" "$base/webhooks/messenger")
[ "$code" = 200 ] || fail "signed webhook answered $code: $(cat "$tmp/webhook.out")"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -H "X-Hub-Signature-256: sha256=$(printf '0%.0s' $(seq 1 64))" --data-binary "$body" "$base/webhooks/messenger")
[ "$code" = 401 ] || fail "badly signed webhook answered $code, want 401"

curl -fsS -o "$tmp/metrics.txt" "$base/metrics" || fail "GET /metrics failed"

# promtool exits 0 on lint warnings, so any output at all is a failure.
status=0
lint=$(promtool check metrics <"$tmp/metrics.txt" 2>&1) || status=$?
if [ "$status" -ne 0 ] || [ -n "$lint" ]; then
  echo "$lint" >&2
  fail "promtool check metrics (exit $status) reported the problems above"
fi

missing=()
for family in \
  handoverd_webhook_requests_total handoverd_webhook_events_total \
  handoverd_webhook_signature_failures_total handoverd_webhook_ingest_duration_seconds \
  handoverd_page_last_webhook_timestamp_seconds handoverd_http_requests_total \
  handoverd_http_request_duration_seconds handoverd_handover_control_wait_seconds \
  handoverd_handover_requests_pending handoverd_interventions_open \
  handoverd_agent_sends_waiting handoverd_agent_send_oldest_waiting_seconds \
  go_goroutines process_start_time_seconds go_build_info; do
  grep -q "^# TYPE $family " "$tmp/metrics.txt" || missing+=("$family")
done
grep -q '^go_sql_open_connections{db_name="handoverd_db_sqlite"}' "$tmp/metrics.txt" || missing+=('go_sql_open_connections{db_name="handoverd_db_sqlite"}')
grep -q '^handoverd_page_last_webhook_timestamp_seconds{page_id="1001"}' "$tmp/metrics.txt" || missing+=('handoverd_page_last_webhook_timestamp_seconds{page_id="1001"}')
[ ${#missing[@]} -eq 0 ] || fail "missing from /metrics: ${missing[*]}"

echo "check-metrics: ok ($(grep -c '^# TYPE ' "$tmp/metrics.txt") families, promtool check metrics clean)"
