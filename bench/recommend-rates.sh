#!/bin/bash
# One `engine serve` at a time, Recommend p99 per window (bench/RESULTS.md, issue 5).
# usage: bench/recommend-rates.sh BIN PORT CATALOG "RATES" [SECONDS]
#   BIN      folder holding the `engine` binary (e.g. src/Engine.Cli/bin/Release/net10.0)
#   CATALOG  demo catalog size (--demo-catalog)
#   RATES    one load-generator window per entry: R (requests/s) or R:W (with --warmup W, left out of the figures)
#   env      EXTRA_ENV (environment for the server, e.g. "ENGINE_GC_EVENTS=1"), SERVE_ARGS (extra `engine serve`
#            arguments), MIX (loadgen --mix, default recommend=100)
# Warm-up before the windows: events for every load-generator shopper (1,000/s for 10 s, so each has a session and a
# profile), then 10 s of Recommend at the first rate. Prints one line per window (loadgen's summary, the load average
# and the server's CPU per request) and, last, the server's Recommend and GC counters.
set -u
B=$1; P=$2; CAT=$3; RATES=$4; DUR=${5:-20}
env ${EXTRA_ENV:-} "$B/engine" serve --port "$P" --demo-catalog "$CAT" --silo-port $((P+100)) --gateway-port $((P+200)) ${SERVE_ARGS:-} >"/tmp/recommend-rates-serve-$P.log" 2>&1 & S=$!
trap 'kill $S 2>/dev/null' EXIT
for _ in $(seq 1 600); do "$B/engine" health --port "$P" >/dev/null 2>&1 && break; sleep 1; done
"$B/engine" loadgen --port "$P" --rate 1000 --duration 10 --mix event=100 >/dev/null 2>&1
first=${RATES%% *}; first=${first%%:*}
"$B/engine" loadgen --port "$P" --rate "$first" --duration 10 --mix recommend=100 >/dev/null 2>&1
for rw in $RATES; do
  r=${rw%%:*}; w=0; [ "$rw" != "$r" ] && w=${rw##*:}
  L0=$(cut -d' ' -f1 /proc/loadavg); t0=$(awk '{print $14+$15}' "/proc/$S/stat")
  out=$("$B/engine" loadgen --port "$P" --rate "$r" --duration "$DUR" --warmup "$w" --mix "${MIX:-recommend=100}" 2>&1 | grep '^loadgen')
  t1=$(awk '{print $14+$15}' "/proc/$S/stat"); L1=$(cut -d' ' -f1 /proc/loadavg)
  # CPU ticks are 1/100 s: µs per request = ticks * 10,000 / requests (warm-up included in both)
  echo "$(date +%T) cat=$CAT rate=$r warmup=$w load=$L0..$L1 $out server_us/req=$(( (t1-t0)*10000/(r*(DUR+w)) ))"
done
"$B/engine" stats --port "$P" | grep -E '"(recommend\.(requests|scans|largest_batch|profile_cache_refreshes|exposures_logged)|process\.gc_(server|heaps|gen0|gen1|gen2|pause_ms|heap_bytes))"' | tr -d '\n '; echo
kill $S; wait $S 2>/dev/null
