using System.Buffers.Binary;
using System.Text;

namespace Engine.Runtime.Tokenization;

/// <summary>
/// Writes a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto, proto2) from a GGUF vocabulary,
/// so that Microsoft.ML.Tokenizers' <c>SentencePieceTokenizer.Create(Stream, …)</c> can load it.
/// </summary>
/// <remarks>
/// Only the fields the tokenizer reads are written. Field numbers are those of sentencepiece_model.proto
/// (checked against the generated <c>*FieldNumber</c> constants inside Microsoft.ML.Tokenizers 2.0.1):
/// <code>
/// ModelProto      pieces=1 (repeated SentencePiece), trainer_spec=2, normalizer_spec=3
/// SentencePiece   piece=1 (string), score=2 (float), type=3 (enum: NORMAL=1 UNKNOWN=2 CONTROL=3
///                 USER_DEFINED=4 UNUSED=5 BYTE=6 — the same numbers as GGUF's tokenizer.ggml.token_type)
/// TrainerSpec     model_type=3 (UNIGRAM=1 BPE=2), vocab_size=4, treat_whitespace_as_suffix=24,
///                 byte_fallback=35, unk_id=40, bos_id=41, eos_id=42, pad_id=43,
///                 unk_piece=45, bos_piece=46, eos_piece=47
/// NormalizerSpec  name=1, add_dummy_prefix=3, remove_extra_whitespaces=4, escape_whitespaces=5
/// </code>
/// proto2 defaults are not what llama.cpp does (remove_extra_whitespaces defaults to true), so every
/// boolean is written explicitly. The protobuf wire format is small enough to write by hand: varints,
/// 32-bit little-endian floats and length-delimited submessages.
/// </remarks>
internal static class SentencePieceModelProto
{
    private const int WireVarint = 0;
    private const int WireLengthDelimited = 2;
    private const int WireFixed32 = 5;

    /// <summary>Normalizer and trainer options that shape encoding.</summary>
    internal readonly record struct Options(
        bool AddDummyPrefix,
        bool RemoveExtraWhitespaces,
        bool EscapeWhitespaces,
        bool ByteFallback,
        int UnknownId,
        int BosId,
        int EosId,
        string UnknownPiece,
        string BosPiece,
        string EosPiece);

    /// <summary>The serialized ModelProto (model_type BPE).</summary>
    /// <param name="pieces">Token strings, by id.</param>
    /// <param name="scores">One score per token.</param>
    /// <param name="types">One SentencePiece/GGUF token type per token (1..6).</param>
    /// <param name="options">Normalizer and trainer settings.</param>
    public static byte[] Write(IReadOnlyList<string> pieces, IReadOnlyList<float> scores, IReadOnlyList<int> types, Options options)
    {
        var model = new ProtoWriter(pieces.Count * 16 + 256);
        var piece = new ProtoWriter(64);
        for (int i = 0; i < pieces.Count; i++)
        {
            piece.Clear();
            piece.WriteString(1, pieces[i]);
            piece.WriteFloat(2, scores[i]);
            piece.WriteVarint(3, (ulong)types[i]);
            model.WriteMessage(1, piece);
        }

        var trainer = new ProtoWriter(128);
        trainer.WriteVarint(3, 2); // model_type = BPE
        trainer.WriteVarint(4, (ulong)pieces.Count);
        trainer.WriteBool(24, false); // treat_whitespace_as_suffix
        trainer.WriteBool(35, options.ByteFallback);
        trainer.WriteInt32(40, options.UnknownId);
        trainer.WriteInt32(41, options.BosId);
        trainer.WriteInt32(42, options.EosId);
        trainer.WriteInt32(43, -1); // pad_id: none
        trainer.WriteString(45, options.UnknownPiece);
        trainer.WriteString(46, options.BosPiece);
        trainer.WriteString(47, options.EosPiece);
        model.WriteMessage(2, trainer);

        var normalizer = new ProtoWriter(32);
        normalizer.WriteString(1, "identity"); // no precompiled charsmap: text is not normalized (llama.cpp does not either)
        normalizer.WriteBool(3, options.AddDummyPrefix);
        normalizer.WriteBool(4, options.RemoveExtraWhitespaces);
        normalizer.WriteBool(5, options.EscapeWhitespaces);
        model.WriteMessage(3, normalizer);

        return model.ToArray();
    }

    /// <summary>A growable buffer with the few protobuf encoders needed here.</summary>
    private sealed class ProtoWriter(int capacity)
    {
        private byte[] _buffer = new byte[Math.Max(capacity, 16)];
        private int _length;

        public void Clear() => _length = 0;

        public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

        public void WriteVarint(int field, ulong value)
        {
            WriteTag(field, WireVarint);
            WriteRawVarint(value);
        }

        public void WriteBool(int field, bool value) => WriteVarint(field, value ? 1UL : 0UL);

        // int32 fields encode negatives as 10-byte sign-extended varints (protobuf's rule).
        public void WriteInt32(int field, int value) => WriteVarint(field, (ulong)(long)value);

        public void WriteFloat(int field, float value)
        {
            WriteTag(field, WireFixed32);
            Ensure(4);
            BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(_length), value);
            _length += 4;
        }

        public void WriteString(int field, string value)
        {
            int byteCount = System.Text.Encoding.UTF8.GetByteCount(value);
            WriteTag(field, WireLengthDelimited);
            WriteRawVarint((ulong)byteCount);
            Ensure(byteCount);
            _length += System.Text.Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
        }

        public void WriteMessage(int field, ProtoWriter message)
        {
            WriteTag(field, WireLengthDelimited);
            WriteRawVarint((ulong)message._length);
            Ensure(message._length);
            message._buffer.AsSpan(0, message._length).CopyTo(_buffer.AsSpan(_length));
            _length += message._length;
        }

        private void WriteTag(int field, int wireType) => WriteRawVarint((ulong)((field << 3) | wireType));

        private void WriteRawVarint(ulong value)
        {
            Ensure(10);
            while (value >= 0x80)
            {
                _buffer[_length++] = (byte)(value | 0x80);
                value >>= 7;
            }
            _buffer[_length++] = (byte)value;
        }

        private void Ensure(int extra)
        {
            if (_length + extra <= _buffer.Length) return;
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + extra));
        }
    }
}
