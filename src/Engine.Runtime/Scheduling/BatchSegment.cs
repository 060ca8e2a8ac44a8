using Engine.Core.Backend;

namespace Engine.Runtime.Scheduling;

/// <summary>
/// The rows one stream contributes to a batched step: <see cref="Count"/> tokens starting at row
/// <see cref="Offset"/> of the step, appended to <see cref="Cache"/> at positions
/// <see cref="Position"/>.. . <see cref="WantLogits"/> asks for the logits of its last row.
/// </summary>
public readonly record struct BatchSegment(KvCache Cache, int Position, int Offset, int Count, bool WantLogits);
