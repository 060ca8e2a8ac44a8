namespace Engine.Core.Backend;

/// <summary>
/// Optional backend capability: record one decode step (a fixed sequence of ops over fixed buffers, n = 1) once and
/// replay it for later tokens, so the host pays one launch per token instead of one per op (CUDA graphs on the
/// ILGPU backend). A caller asks for it with <c>backend as IDecodeStepReplay</c>; a backend without it, or one that
/// returns null, is simply driven op by op.
/// </summary>
public interface IDecodeStepReplay
{
    /// <summary>
    /// A replayable decode step whose body is <paramref name="step"/>, or null when this backend cannot replay now
    /// (no GPU, replay switched off). <paramref name="step"/> must enqueue the same ops on the same buffers, KV cache and
    /// weights on every call, for one row (n = 1), passing the token and position that <see cref="IDecodeStep.Run"/>
    /// is given as <c>tokens[0]</c> and <c>positions[0]</c> of its ops; it must not read results back. The step object
    /// is the graph's key: one per (decoder, KV cache, model). Dispose it with the buffers it uses.
    /// </summary>
    IDecodeStep? CreateDecodeStep(Action step);
}

/// <summary>A decode step recorded by <see cref="IDecodeStepReplay.CreateDecodeStep"/>.</summary>
public interface IDecodeStep : IDisposable
{
    /// <summary>
    /// Runs the step for <paramref name="token"/> at <paramref name="position"/>: replays the recorded form when
    /// there is a valid one, else runs the body op by op (recording it when it can). The caller sets up whatever
    /// the body reads (the token and position it passes to the ops) before the call; results are the same either way.
    /// </summary>
    void Run(int token, int position);
}
