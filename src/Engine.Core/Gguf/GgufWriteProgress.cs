namespace Engine.Core.Gguf;

/// <summary>
/// Progress of a long GGUF write (quantize, synth-model), reported after each slab of a tensor.
/// </summary>
/// <param name="TensorIndex">Index of the tensor being written (0-based).</param>
/// <param name="TensorCount">Number of tensors in the file.</param>
/// <param name="TensorName">Name of the tensor being written.</param>
/// <param name="BytesDone">Tensor data bytes written so far, all tensors together.</param>
/// <param name="BytesTotal">Tensor data bytes of the whole file.</param>
public readonly record struct GgufWriteProgress(int TensorIndex, int TensorCount, string TensorName, long BytesDone, long BytesTotal);
