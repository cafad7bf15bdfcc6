#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 30s), one worker each,
# so the total is bounded: (number of targets) × FUZZTIME plus the builds.
# The server targets need PostgreSQL (HANDOVERD_TEST_POSTGRES_URL).
# A failing input is written under the package's testdata/fuzz/ — commit it
# with the fix, it becomes a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"
# The fuzzer minimizes each new input it finds; a run
# whose FUZZTIME ends while the fuzzer minimizes fails with "context
# deadline exceeded" though nothing failed. Bounded runs (CI) set 0, which
# keeps inputs as found; longer runs minimize for at most this long.
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-10s}"
targets=(
  ./messenger/:FuzzParseWebhook
  ./userlike/:FuzzParseEvents
  ./engage/:FuzzEngageHandoverParams
  ./lexer/:FuzzLexerObject
  ./inbox/:FuzzAPIDecoders
  ./config/:FuzzParse
  ./server/:FuzzWebhookBothStores
  ./server/:FuzzAPIBothStores
)
for t in "${targets[@]}"; do
  pkg="${t%%:*}" name="${t##*:}"
  echo "fuzz: $name ($pkg) for $FUZZTIME"
  go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" -parallel 1
done
