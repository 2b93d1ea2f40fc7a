#!/usr/bin/env bash
# Load benchmark of the wiki: builds ruledex, ingests the shared corpus into a fresh
# catalog, starts `ruledex serve` on loopback, runs webload (50 clients) against it,
# prints throughput, latency percentiles and the server's memory, then stops the server.
#
#   bash bench/webload/run.sh            # from the repository root
#   CLIENTS=50 REQUESTS=20000 bash bench/webload/run.sh
#   COLD=1 bash bench/webload/run.sh     # cold path: every rule page once, then distinct searches
#   COLD=1 BASE=e359bd4 bash bench/webload/run.sh   # the same load against another commit too,
#                                                   # on the same catalog, for a ratio on a shared machine
#                                                   # (both servers up at once, loaded in turns, responses
#                                                   # compared; SEQUENTIAL=1: one after the other)
#   DB=/tmp/me.db COLD=1 bash bench/webload/run.sh  # reuse (or create once) a catalog of the full corpus
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
corpus=${RULEDEX_CORPUS:-$repo/../shared/corpus}
addr=${ADDR:-127.0.0.1:18099}
work=$(mktemp -d)
server=""
stop_server() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill "$server"          # SIGTERM: graceful shutdown
    wait "$server" 2>/dev/null || true
  fi
  server=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
go build -o "$work/ruledex" ./cmd/ruledex
(cd bench && go build -o "$work/webload" ./webload)
if [ -n "${BASE:-}" ]; then
  mkdir "$work/base"
  git archive "$BASE" | tar -x -C "$work/base"
  (cd "$work/base" && go build -o "$work/ruledex-base" ./cmd/ruledex)
fi

# The full five-language catalog (Sigma, KQL, SPL, Elastic, YARA-L): what the targets are about.
db=${DB:-$work/catalog.db}
if [ ! -s "$db" ]; then
  echo "== ingest $corpus (all five languages) into $db"
  "$work/ruledex" --db "$db" --data "$corpus" ingest "$corpus" >/dev/null
fi

start() { # binary label addr: start a server and wait until it answers
  local log="$work/serve-$2.log" pid
  echo "== serve $2 on $3"
  "$1" --db "$db" --data "$corpus" serve --addr "$3" 2>"$log" &
  pid=$!
  for _ in $(seq 1 120); do
    if curl -fs -o /dev/null "http://$3/api/"; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; exit 1; fi
    sleep 0.5
  done
  started=$pid
}
binary() { if [ "$1" = base ]; then echo "$work/ruledex-base"; else echo "$work/ruledex"; fi; }
ready() { # label: wait for the pre-rendering and the scoring of search words to finish
  # A server that pre-renders says so when done; wait for it (at most five minutes: on
  # a shared, busy machine rendering every page takes longer than the minute it takes alone).
  # Then the common search words are scored ahead (a few seconds more).
  local log="$work/serve-$1.log"
  for _ in $(seq 1 600); do
    if grep -q "search words scored ahead" "$log"; then grep -E "rule pages pre-rendered|search words scored ahead" "$log"; break; fi
    # An older build that scores nothing ahead is ready once pre-rendered.
    if grep -q "rule pages pre-rendered" "$log" && ! grep -aq "search words scored ahead" "$(binary "$1")"; then break; fi
    sleep 0.5
  done
}
load() { # binary label
  start "$1" "$2" "$addr"
  server=$started
  ready "$2"
  echo "== load $2 (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/webload" -url "http://$addr" -pid "$server" -c "${CLIENTS:-50}" -n "${REQUESTS:-20000}" -t "${TIME:-30s}" ${UNCACHED:+-uncached} ${COLD:+-cold}
  echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
}
if [ -n "${COLD:-}" ] && [ -n "${BASE:-}" ] && [ -z "${SEQUENTIAL:-}" ]; then
  # Both servers up at once, loaded in turns slice by slice (webload -url2): on a machine
  # others share, the two builds then see the same conditions, and their responses are
  # compared byte for byte.
  addr2=${ADDR2:-127.0.0.1:18098}
  start "$work/ruledex" this "$addr"
  server=$started
  start "$work/ruledex-base" base "$addr2"
  server2=$started
  trap 'kill $server2 2>/dev/null || true; wait $server2 2>/dev/null || true; cleanup' EXIT
  ready this
  ready base
  echo "== load this (A) and base (B) in turns (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/webload" -url "http://$addr" -pid "$server" -url2 "http://$addr2" -pid2 "$server2" -c "${CLIENTS:-50}" -t "${TIME:-30s}" -cold
  echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
load "$work/ruledex" this
if [ -n "${BASE:-}" ]; then
  load "$work/ruledex-base" base
fi
