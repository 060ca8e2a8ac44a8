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
# The MiniLM package assembly (91 MB, copied into every output that references Engine.Runtime) would push the
# tarball past the transfer limit; the benchmark reads the converted Q8_0 weights instead (see below).
rm -rf "$stage/models"
# Smoke: the published binary starts and its kernels pass on the ILGPU CPU accelerator.
if [[ "${SKIP_SMOKE:-0}" != "1" ]]; then
  "$stage/Engine.GpuBench" --cpu-smoke > "$out/cpu-smoke.txt" 2>&1 || { cat "$out/cpu-smoke.txt"; echo "publish.sh: CPU smoke failed" >&2; exit 1; }
  tail -n 3 "$out/cpu-smoke.txt"
fi
# The converted all-MiniLM-L6-v2 Q8_0 weights (25 MB; made by any `engine embed` run) for the end-to-end encoder
# section: carried as .device/minilm, found through ENGINE_CACHE_DIR by run-on-device.sh.
rm -rf "$out/minilm" && mkdir -p "$out/minilm"
cache="${ENGINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/engine}"
newest=$(ls -t "$cache"/all-MiniLM-L6-v2.*.q8_0.gguf 2>/dev/null | head -n 1 || true)
if [[ -n "$newest" ]]; then cp "$newest" "$out/minilm/"; else echo "publish.sh: no converted MiniLM Q8_0 file in $cache (run engine embed once); the encoder section will be skipped" >&2; fi
tar -C "$out" -cJf "$out/gpubench.tar.xz" gpubench
rm -rf "$stage"
size=$(stat -c %s "$out/gpubench.tar.xz")
echo "packed $out/gpubench.tar.xz: $((size / 1024 / 1024)) MiB ($size bytes)"
if (( size > 40 * 1024 * 1024 )); then echo "publish.sh: tarball over 40 MiB" >&2; exit 1; fi
