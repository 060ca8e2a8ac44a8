#!/bin/bash
# One engine serve at a time (bench/RESULTS.md, "Exposure path allocations"): 10 s warm-up at 1,000 Recommend/s, then
# 40 s at RATE while `engine stats` is read every 2 s; prints the server's GC counters over time (collections per
# generation, total pause, heap size) and the loadgen line. Builds with process.gc_* stats only (2026-11-26 on).
# usage: bench/recommend-gc-watch.sh BIN_DIR PORT [RATE] [ENV]   e.g. ENV="ENGINE_EXPOSURES=0"   (Linux; ports PORT, +100, +200)
# ENV="ENGINE_GC_EVENTS=1" (builds from the sixth session on) adds bytes promoted out of gen 0 / gen 1 and the gen-1/2
# collections by trigger reason (alloc_large: the large-object heap's budget); =2 adds LOH bytes allocated.
B=$1; P=$2; RATE=${3:-2000}
env ${4:-ENGINE_GC_WATCH=1} $B/engine serve --port $P --demo-catalog 10000 --silo-port $((P+100)) --gateway-port $((P+200)) >/tmp/recommend-gc-watch-$P.log 2>&1 & S=$!
for i in $(seq 1 300); do $B/engine health --port $P >/dev/null 2>&1 && break; sleep 1; done
$B/engine loadgen --port $P --rate 1000 --duration 10 --mix recommend=100 >/dev/null 2>&1
$B/engine loadgen --port $P --rate $RATE --duration 40 --mix recommend=100 >/tmp/recommend-gc-watch-lg-$P.txt 2>&1 & L=$!
for i in $(seq 1 16); do
  sleep 2
  echo "$(date +%T) $($B/engine stats --port $P 2>/dev/null | awk -F'[":,]+' '/"process.gc_(gen0|gen1|gen2|pause_ms|heap_bytes|events\.(promoted_gen[01]_bytes|gen[12]_reason_[a-z_]+|loh_alloc_bytes))"/ {printf "%s=%s ", $2, $3}' | sed 's/process.gc_//g; s/events\.//g; s/= /=/g')"
done
wait $L; grep -E '^(loadgen|errors)' /tmp/recommend-gc-watch-lg-$P.txt | head -3
kill $S; wait $S 2>/dev/null
