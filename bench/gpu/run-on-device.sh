#!/usr/bin/env bash
# Runs on the GPU machine from the repository root, with .device/gpubench.tar.xz carried over
# (made by bench/gpu/publish.sh). Prints the device, copy bandwidth, per-kernel checks and GB/s, decode
# tokens/s and top-k queries/s; the log and summary go to $OUT/gpu-results.txt as well.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tarball="$root/.device/gpubench.tar.xz"
work="${TMPDIR:-/tmp}/gpubench-run"
[[ -f "$tarball" ]] || { echo "run-on-device.sh: $tarball missing: run bench/gpu/publish.sh and carry .device" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv 2>/dev/null || echo "nvidia-smi not available"
rm -rf "$work" && mkdir -p "$work"
tar -C "$work" -xJf "$tarball"
export DOTNET_TieredPGO=1
[[ -d "$root/.device/minilm" ]] && export ENGINE_CACHE_DIR="$root/.device/minilm"
"$work/gpubench/Engine.GpuBench" "$@"
rc=$?
echo "Engine.GpuBench exit code $rc"
exit $rc
