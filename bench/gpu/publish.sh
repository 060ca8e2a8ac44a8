#!/usr/bin/env bash
# Publishes the GPU benchmark self-contained for linux-x64 (no .NET needed on the GPU machine) and packs
# it to .device/gpubench.tar.xz (git-ignored), small enough for the device tool's 64 MiB transfer limit.
# Usage: bench/gpu/publish.sh            then carry ".device" and run bench/gpu/run-on-device.sh there.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.device"
stage="$out/gpubench"
rm -rf "$stage"
mkdir -p "$out"
dotnet publish "$root/bench/Engine.GpuBench/Engine.GpuBench.csproj" -c Release -r linux-x64 --self-contained \
  -p:PublishTrimmed=false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$stage" --nologo -v quiet
# Smoke: the published binary starts and its kernels pass on the ILGPU CPU accelerator.
if [[ "${SKIP_SMOKE:-0}" != "1" ]]; then
  "$stage/Engine.GpuBench" --cpu-smoke > "$out/cpu-smoke.txt" 2>&1 || { cat "$out/cpu-smoke.txt"; echo "publish.sh: CPU smoke failed" >&2; exit 1; }
  tail -n 3 "$out/cpu-smoke.txt"
fi
tar -C "$out" -cJf "$out/gpubench.tar.xz" gpubench
rm -rf "$stage"
size=$(stat -c %s "$out/gpubench.tar.xz")
echo "packed $out/gpubench.tar.xz: $((size / 1024 / 1024)) MiB ($size bytes)"
if (( size > 40 * 1024 * 1024 )); then echo "publish.sh: tarball over 40 MiB" >&2; exit 1; fi
