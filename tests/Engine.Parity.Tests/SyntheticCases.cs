using Engine.Core.Gguf;

namespace Engine.Parity.Tests;

/// <summary>
/// The seeded random models the parity tests compare on: small (2 layers, 64–256 wide, vocab 384,
/// so the suite stays fast) but covering what the decoder must get right: query/KV head ratios
/// 1, 2, 4 and 8, head widths 8 to 64, tied and untied output heads, F32 and Q8_0 files (and a
/// Q8_0 file whose ffn_down rows of 80 are not a multiple of 32 and stay F32), two RoPE bases.
/// </summary>
internal static class SyntheticCases
{
    /// <summary>Seed of every case's weights.</summary>
    public const ulong Seed = 7;

    /// <summary>Smallest vocabulary the generator accepts is 336; 384 keeps the output head small.</summary>
    private const int Vocab = 384;

    private static SyntheticModelConfig Shape(string name, int dim, int heads, int kvHeads, int ffn, bool tied, float ropeBase = 10000f) => new()
    {
        Name = name,
        EmbeddingLength = dim,
        BlockCount = 2,
        HeadCount = heads,
        HeadCountKv = kvHeads,
        FeedForwardLength = ffn,
        VocabSize = Vocab,
        ContextLength = 256,
        TiedEmbeddings = tied,
        RopeFreqBase = ropeBase,
    };

    private static readonly Dictionary<string, (SyntheticModelConfig Config, GgmlType Type)> _cases = new()
    {
        ["mha-untied-f32"] = (Shape("mha-untied", 64, 4, 4, 128, tied: false), GgmlType.F32),
        ["gqa2-tied-f32"] = (Shape("gqa2-tied", 64, 4, 2, 128, tied: true), GgmlType.F32),
        ["gqa4-untied-f32-hd64"] = (Shape("gqa4-hd64", 256, 4, 1, 256, tied: false, ropeBase: 100000f), GgmlType.F32),
        ["mha-tied-q8_0"] = (Shape("mha-tied", 64, 4, 4, 128, tied: true), GgmlType.Q8_0),
        ["gqa2-untied-q8_0-ffn80"] = (Shape("gqa2-untied-ffn80", 64, 4, 2, 80, tied: false), GgmlType.Q8_0),
        ["gqa4-untied-q8_0"] = (Shape("gqa4-untied", 64, 8, 2, 128, tied: false), GgmlType.Q8_0),
        ["gqa8-tied-q8_0"] = (Shape("gqa8-tied", 64, 8, 1, 128, tied: true, ropeBase: 100000f), GgmlType.Q8_0),
    };

    /// <summary>Case names for [InlineData]/[MemberData].</summary>
    public static IEnumerable<string> Names => _cases.Keys;

    public static GgmlType TypeOf(string name) => _cases[name].Type;

    public static SyntheticModelConfig ConfigOf(string name) => _cases[name].Config;

    /// <summary>Writes case <paramref name="name"/> into <paramref name="directory"/> and returns the path.</summary>
    public static string Write(string name, string directory)
    {
        var (config, type) = _cases[name];
        string path = Path.Combine(directory, name + ".gguf");
        SyntheticModel.Write(path, config, Seed, type, threads: 1);
        return path;
    }
}
