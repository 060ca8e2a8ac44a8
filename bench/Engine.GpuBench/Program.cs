using System.Diagnostics;
using System.Runtime.InteropServices;
using Engine.Core.Backend;
using Engine.Core.Gguf;
using Engine.Cpu.Reference;
using Engine.GpuBench;
using Engine.Kernels;
using Engine.Kernels.Testing;
using ILGPU;
using ILGPU.Runtime;

// engine GPU benchmark. Usage: Engine.GpuBench [--cpu-smoke]
//   default     : CUDA device; full shapes (about a minute of device time).
//   --cpu-smoke : ILGPU CPU accelerator with tiny shapes, to check that the published binary starts.
// Writes the log and the summary to $OUT/gpu-results.txt when OUT is set.
// Exit code: 0 all checks passed, 1 a check failed, 3 no usable CUDA device (the CPU smoke ran instead).

bool cpuSmoke = args.Contains("--cpu-smoke");
var report = new Report();
var total = Stopwatch.StartNew();
report.Line($"engine gpu bench  {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC  ILGPU {typeof(Context).Assembly.GetName().Version}  .NET {Environment.Version}  {RuntimeInformation.OSDescription}  cpus {Environment.ProcessorCount}");

IlgpuDevice device;
bool noGpu = false;
if (cpuSmoke)
{
    device = IlgpuDevice.CreateCpu();
}
else if (IlgpuDevice.TryCreateCuda(out var gpu, out var reason))
{
    device = gpu;
}
else
{
    report.Line("CUDA UNAVAILABLE: " + reason);
    report.Line("running the CPU-accelerator smoke instead");
    device = IlgpuDevice.CreateCpu();
    noGpu = true;
}
report.Line("device: " + device.Description);
report.Line($"{IlgpuBackend.GraphsVariable}={Environment.GetEnvironmentVariable(IlgpuBackend.GraphsVariable) ?? "(unset)"}");
report.Line($"ENGINE_SPLIT_ATTENTION={Environment.GetEnvironmentVariable("ENGINE_SPLIT_ATTENTION") ?? "(unset)"}  ENGINE_ILGPU_O2={Environment.GetEnvironmentVariable("ENGINE_ILGPU_O2") ?? "(unset)"}");
report.Row("device", device.IsCuda ? "cuda" : "cpu-accelerator", device.Accelerator.Name);
var sizes = device.IsCuda ? Sizes.Full : Sizes.Smoke;
Timing.Quick = !device.IsCuda;

IlgpuBackend? backend = null;
try
{
    var created = Stopwatch.StartNew();
    backend = new IlgpuBackend(device, ownsDevice: false);
    report.Line($"kernels compiled and loaded in {created.Elapsed.TotalSeconds:F1} s; CUDA graphs: {backend.GraphStatus}");
}
catch (Exception e)
{
    report.Fail("setup", "kernel load", e);
}

double copyBw = 0;
if (backend is not null)
{
    Section("copy bandwidth", () => copyBw = Benchmarks.CopyBandwidth(device, sizes, report));
    Section("op checks", () => Benchmarks.OpChecks(backend, sizes, report));
    Section("encoder ops", () => EncoderOps.Run(backend, device.IsCuda, report));
    Section("minilm end to end", () => MiniLmEndToEnd.Run(backend, device.IsCuda, report));
    Section("q8_0 matvec", () => Benchmarks.MatVec(backend, sizes, copyBw, report));
    Section("op timings", () => Benchmarks.OpTimings(backend, sizes, copyBw, report));
    Section("host enqueue per op", () => HostEnqueue.Run(backend, sizes, report));
    foreach (var model in sizes.Models)
        Section("decode " + model.Name, () => Benchmarks.Decode(backend, model, sizes, copyBw, report));
    foreach (var config in sizes.SynthModels)
        Section("decoder " + config.Name, () => Benchmarks.RealDecoder(backend, config, sizes, copyBw, report));
    Section("streams", () => Streams.Run(backend, report));
    Section("top-k", () => TopK.Run(device, sizes, copyBw, report));
}

report.Line("");
report.Line($"SUMMARY ({device.Description}; {total.Elapsed.TotalSeconds:F0} s)");
string summary = report.Summary();
report.Line(summary);
report.Line(report.Failures == 0 ? "ALL CHECKS PASSED" : $"{report.Failures} CHECK(S) FAILED");
string? outDir = Environment.GetEnvironmentVariable("OUT");
if (!string.IsNullOrEmpty(outDir))
{
    Directory.CreateDirectory(outDir);
    File.WriteAllText(Path.Combine(outDir, "gpu-results.txt"), report.Log);
    Console.WriteLine($"written {Path.Combine(outDir, "gpu-results.txt")}");
}
backend?.Dispose();
device.Dispose();
return noGpu ? 3 : report.Failures == 0 ? 0 : 1;

void Section(string name, Action body)
{
    report.Line("");
    report.Line($"== {name}");
    var sw = Stopwatch.StartNew();
    try
    {
        body();
    }
    catch (Exception e)
    {
        report.Fail(name, "section", e);
        Console.Error.WriteLine(e);
    }
    report.Line($"   ({sw.Elapsed.TotalSeconds:F1} s)");
}
