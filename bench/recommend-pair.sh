#!/bin/bash
# Recommend side by side (bench/RESULTS.md, "Recommend: CPU per request"): two engine builds serve the same demo
# catalog at once and engine loadgen alternates between them, so both see the same machine load. Prints per run:
# latency line, load average, server CPU per request (/proc/PID/stat) and loadgen CPU per request (/usr/bin/time).
# usage: bench/recommend-pair.sh OLD_BIN_DIR NEW_BIN_DIR PORT CATALOG "RATES" SECONDS   (Linux; ports PORT..PORT+201)
# PAIR_ENV_A / PAIR_ENV_B: extra environment for the old / new server, e.g. PAIR_ENV_A="ENGINE_EXPOSURES=0" (exposure
# logging off; builds from 2026-11-26 on). The stats lines end with exposures per Recommend (logged / requests).
# Builds that report process.gc_* in Stats (2026-11-26, fifth session on) add per run: bytes allocated per request
# (alloc_B/req) and collections and GC pause per 10,000 requests (gen0/gen1/gen2/pause_ms per 10k): robust where the
# latency is noisy (GC counts from the server's own counters, read before and after each run).
A=$1; B=$2; P=$3; CAT=$4; RATES=$5; DUR=${6:-10}
PA=$P; PB=$((P+1))
env $PAIR_ENV_A $A/engine serve --port $PA --demo-catalog $CAT --silo-port $((PA+100)) --gateway-port $((PA+200)) >/tmp/recommend-pair-serve-$PA.log 2>&1 & SA=$!
env $PAIR_ENV_B $B/engine serve --port $PB --demo-catalog $CAT --silo-port $((PB+100)) --gateway-port $((PB+200)) >/tmp/recommend-pair-serve-$PB.log 2>&1 & SB=$!
for i in $(seq 1 300); do $A/engine health --port $PA >/dev/null 2>&1 && $B/engine health --port $PB >/dev/null 2>&1 && break; sleep 1; done
gcsnap() { # BIN PORT -> "allocated gen0 gen1 gen2 pause_ms requests" (zeros where the build has no process.gc_* stats)
  $1/engine stats --port $2 2>/dev/null | awk -F'[":,]+' '
    /"process.gc_allocated_bytes"/ {a=$3} /"process.gc_gen0"/ {g0=$3} /"process.gc_gen1"/ {g1=$3}
    /"process.gc_gen2"/ {g2=$3} /"process.gc_pause_ms"/ {p=$3} /"recommend.requests"/ {r=$3}
    END {printf "%.0f %d %d %d %.1f %d\n", a, g0, g1, g2, p, r}'
}
gcdelta() { # BEFORE AFTER (gcsnap lines) -> per-request allocation and per-10k-request collections
  echo "$1 $2" | awk '{n=$12-$6; if (n<=0 || $7==0) {print "gc=n/a"; exit}
    printf "alloc_B/req=%.0f gen0/10k=%.1f gen1/10k=%.2f gen2/10k=%.2f gc_pause_ms/10k=%.1f", ($7-$1)/n, ($8-$2)*1e4/n, ($9-$3)*1e4/n, ($10-$4)*1e4/n, ($11-$5)*1e4/n}'
}
run() { # BIN PORT SPID RATE MIX LABEL
  local G0=$(gcsnap $1 $2)
  local S0=$(awk '{print $14+$15}' /proc/$3/stat) L0=$(cut -d' ' -f1 /proc/loadavg)
  local OUT=$( { /usr/bin/time -f "lgcpu=%U+%S" $1/engine loadgen --port $2 --rate $4 --duration $DUR --mix $5 ; } 2>&1 )
  local S1=$(awk '{print $14+$15}' /proc/$3/stat) L1=$(cut -d' ' -f1 /proc/loadavg)
  local G1=$(gcsnap $1 $2)
  local N=$(echo "$OUT" | grep '^loadgen sent' | sed 's/.*sent=\([0-9]*\).*/\1/')
  local LG=$(echo "$OUT" | grep lgcpu | sed 's/lgcpu=//' | bc)
  echo "$6 cat=$CAT rate=$4 $5 load=$L0..$L1 $(echo "$OUT" | grep '^loadgen sent' | sed 's/loadgen //') server_us/req=$(( (S1-S0)*10000 / (N>0?N:1) )) loadgen_us/req=$(echo "$LG*1000000/${N:-1}" | bc) $(gcdelta "$G0" "$G1")$(echo "$OUT" | grep -m1 '^errors:' | sed 's/^errors:/ top_error:/')"
}
run $A $PA $SA 2000 event=100 base
run $B $PB $SB 2000 event=100 new
run $A $PA $SA 1000 recommend=100 base-warmup
run $B $PB $SB 1000 recommend=100 new-warmup
for R in $RATES; do
  run $A $PA $SA $R recommend=100 base
  run $B $PB $SB $R recommend=100 new
done
sleep 2 # the exposure logger sends its last batch
for X in "$A $PA base" "$B $PB new"; do set -- $X
  ST=$($1/engine stats --port $2 2>/dev/null)
  REQ=$(echo "$ST" | grep '"recommend.requests"' | grep -o '[0-9]*' | head -1); LOGGED=$(echo "$ST" | grep '"recommend.exposures_logged"' | grep -o '[0-9]*' | head -1)
  echo "$3 stats: $(echo "$ST" | grep -E "recommend\.(requests|scans|with_profile|largest_batch|profile_cache_hits|profile_cache_misses|exposures_logged|exposures_dropped|exposures_failed|exposure_calls)\"" | tr -s ' \n' ' ') exposures_per_recommend=$( [ -n "$LOGGED" ] && echo "scale=3; $LOGGED / ${REQ:-1}" | bc || echo off)"
done
kill $SA $SB; wait $SA $SB 2>/dev/null
