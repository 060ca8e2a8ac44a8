namespace Engine.Cli.Bench;

/// <summary>What <c>engine bench decode</c> measures; see <see cref="DecodeBenchmark"/>.</summary>
/// <param name="ModelPath">GGUF file both engines load.</param>
/// <param name="Threads">Threads for each engine (the same for both).</param>
/// <param name="Tokens">Decode steps per round.</param>
/// <param name="Rounds">Timed rounds per engine, after one warm-up round each.</param>
/// <param name="PromptTokens">Length of the prompt prefilled before each round (BOS then fixed ids).</param>
/// <param name="CompareLlamaCpp">Also run llama.cpp, alternating rounds with our engine.</param>
internal sealed record DecodeBenchSettings(
    string ModelPath,
    int Threads,
    int Tokens,
    int Rounds,
    int PromptTokens,
    bool CompareLlamaCpp)
{
    /// <summary>Context both engines allocate: the prompt, the decoded tokens and one spare.</summary>
    public int ContextSize => PromptTokens + Tokens + 1;
}
