using Engine.Runtime.Encoding;

namespace Engine.Parity.Tests.MiniLm;

/// <summary>Tokenization, cache and bad input of the MiniLM encoder (on the package's model; no timing).</summary>
public sealed class MiniLmEncoderBehaviourTests(MiniLmFixture fx) : IClassFixture<MiniLmFixture>
{
    private int VocabId(string piece)
    {
        using var reader = new StreamReader(new MemoryStream(fx.Vocabulary));
        int id = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine(), id++)
            if (line == piece) return id;
        throw new KeyNotFoundException(piece);
    }

    [Fact]
    public void Tokenizer_gives_bert_uncased_ids()
    {
        var tok = fx.F32.Tokenizer;
        // Ids well known from bert-base-uncased: [CLS] 101, hello 7592, world 2088, [SEP] 102.
        Assert.Equal([101, 7592, 2088, 102], tok.Encode("Hello, WORLD").Where(id => id != VocabId(",")));
        Assert.Equal([101, 7592, 1010, 2088, 102], tok.Encode("Hello, WORLD"));
        // WordPiece split of an out-of-vocabulary word (the example of HF's tokenizer docs) and accent stripping.
        Assert.Equal([101, VocabId("una"), VocabId("##ffa"), VocabId("##ble"), 102], tok.Encode("Unaffable"));
        Assert.Equal(tok.Encode("cafe creme"), tok.Encode("Café Crème"));
        // Symbols HF's basic tokenizer splits off as punctuation (ASCII non-alphanumerics), which the library's default drops.
        Assert.Equal([101, VocabId("under"), VocabId("$"), VocabId("50"), 102], tok.Encode("under $50"));
        Assert.Equal([101, VocabId("a"), VocabId("+"), VocabId("b"), 102], tok.Encode("a+b"));
        // CJK ideographs one by one; user text never yields special tokens.
        Assert.Equal([101, VocabId("東"), VocabId("京"), 102], tok.Encode("東京"));
        Assert.DoesNotContain(BertTextTokenizer.SepId, tok.Encode("a [SEP] b").Skip(1).SkipLast(1));
    }

    [Fact]
    public void Converted_weights_are_cached_and_reused()
    {
        Assert.StartsWith(fx.CacheDirectory, fx.Q8.CachePath);
        Assert.True(File.Exists(fx.Q8.CachePath));
        var written = File.GetLastWriteTimeUtc(fx.Q8.CachePath);
        using var again = MiniLmEncoder.Create(fx.Cpu, fx.Onnx, fx.Vocabulary, EncoderPrecision.Q8_0, fx.CacheDirectory);
        Assert.Equal(fx.Q8.CachePath, again.CachePath);
        Assert.Equal(written, File.GetLastWriteTimeUtc(again.CachePath));
        Assert.Equal(fx.Q8.Embed(ProductTexts.All[3]), again.Embed(ProductTexts.All[3]));
        Assert.Equal("all-MiniLM-L6-v2/q8_0", again.ModelVersion);
        Assert.Equal(384, again.Dimensions);
    }

    [Fact]
    public void A_cache_file_alone_runs_the_encoder()
    {
        var file = BertWeightCache.OpenNewest(fx.CacheDirectory, MiniLmEncoder.ModelName, EncoderPrecision.Q8_0);
        Assert.NotNull(file);
        Assert.Equal(fx.Q8.CachePath, file.Path);
        using var fromFile = MiniLmEncoder.FromCacheFile(fx.Cpu, file, EncoderPrecision.Q8_0);
        Assert.Equal(fx.Q8.Tokenizer.Encode(ProductTexts.All[13]), fromFile.Tokenizer.Encode(ProductTexts.All[13]));
        Assert.Equal(fx.Q8.Embed(ProductTexts.All[13]), fromFile.Embed(ProductTexts.All[13]));
        Assert.Null(BertWeightCache.OpenNewest(Path.Combine(fx.CacheDirectory, "absent"), MiniLmEncoder.ModelName, EncoderPrecision.Q8_0));
    }

    [Fact]
    public void A_corrupt_cache_file_is_rebuilt()
    {
        string dir = Path.Combine(Path.GetTempPath(), "engine-minilm-corrupt-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path;
            using (var first = MiniLmEncoder.Create(fx.Cpu, fx.Onnx, fx.Vocabulary, EncoderPrecision.Q8_0, dir))
                path = first.CachePath;
            using (var f = File.OpenWrite(path)) f.SetLength(f.Length / 2);
            using var rebuilt = MiniLmEncoder.Create(fx.Cpu, fx.Onnx, fx.Vocabulary, EncoderPrecision.Q8_0, dir);
            Assert.Equal(fx.Q8.Embed(ProductTexts.All[5]), rebuilt.Embed(ProductTexts.All[5]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Concurrent_callers_get_the_same_embeddings_as_one_caller()
    {
        var texts = ProductTexts.All.Take(4).ToArray();
        var expected = new float[texts.Length * 384];
        fx.Q8.Embed(texts, expected);
        var results = new float[4][];
        Parallel.For(0, results.Length, i =>
        {
            results[i] = new float[texts.Length * 384];
            fx.Q8.Embed(texts, results[i]);
        });
        foreach (var r in results) Assert.Equal(expected, r);
    }

    [Fact]
    public void Bad_arguments_are_rejected_and_nothing_is_written()
    {
        var output = new float[2 * 384];
        output.AsSpan().Fill(7f);
        Assert.Throws<ArgumentException>(() => fx.F32.Embed(["a", "b"], output.AsSpan(0, 383)));
        Assert.Throws<ArgumentNullException>(() => fx.F32.Embed(["a", null!], output));
        Assert.All(output, v => Assert.Equal(7f, v));
        fx.F32.Embed([], output); // nothing to do
        Assert.All(output, v => Assert.Equal(7f, v));
    }
}
