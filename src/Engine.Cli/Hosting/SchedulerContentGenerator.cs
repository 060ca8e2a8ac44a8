using System.Globalization;
using System.Text;
using Engine.Control.Catalog;
using Engine.Control.Content;
using Engine.Runtime.Generation;
using Engine.Runtime.Sampling;
using Engine.Runtime.Scheduling;
using RuntimeFinish = Engine.Runtime.Generation.FinishReason;

namespace Engine.Cli.Hosting;

/// <summary>
/// The content cache's <see cref="IContentGenerator"/> in <c>engine serve</c>: product copy written by the same
/// <see cref="GenerationScheduler"/> that serves uncached Generate requests (so it is batched with them). The
/// content cache grain's single flight means this runs once per cache key however many requests
/// wait for it. The prompt comes from the product's catalog facts and the template name (<see cref="ProductCopyPrompt"/>).
/// </summary>
internal sealed class SchedulerContentGenerator(GenerationScheduler scheduler) : IContentGenerator
{
    /// <summary>Copy that ended on its own (end of text, stop sequence) is complete.</summary>
    internal const float CompleteConfidence = 1f;

    /// <summary>
    /// Copy cut off at its token limit or the context is likely mid-sentence: below the default auto-publish
    /// threshold (<c>ControlOptions.AutoPublishConfidence</c>, 0.8), so it goes to review rather than to the storefront.
    /// </summary>
    internal const float TruncatedConfidence = 0.5f;

    public async Task<GeneratedCopy> GenerateAsync(ProductInfo product, string template, string modelVersion, GenerationParameters parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(product);
        ArgumentNullException.ThrowIfNull(parameters);
        var options = new GenerationOptions
        {
            MaxTokens = parameters.MaxTokens,
            Sampling = new SamplingOptions
            {
                Temperature = parameters.Temperature,
                TopK = 0,
                TopP = parameters.TopP is > 0 and <= 1 ? parameters.TopP : 1f,
                MinP = 0,
                Seed = parameters.Seed == 0 ? null : parameters.Seed,
            },
        };
        var stream = scheduler.Submit(ProductCopyPrompt.Build(product, template), options, cancellationToken);
        ScheduledGenerationResult result = await stream.Completion.ConfigureAwait(false);
        float confidence = result.FinishReason is RuntimeFinish.EndOfGeneration or RuntimeFinish.StopSequence ? CompleteConfidence : TruncatedConfidence;
        return new GeneratedCopy(result.Text.Trim(), confidence);
    }
}

/// <summary>The prompt for a product's copy: the template name, then the product's catalog facts, then the template as a heading to continue.</summary>
internal static class ProductCopyPrompt
{
    /// <summary>
    /// For template "description": "Write the description of this product.\nProduct: …\nCategory: …\n&lt;attribute&gt;: &lt;value&gt;\n…\nPrice: …\nDescription:".
    /// Attributes in ordinal key order, so one product always gives one prompt.
    /// </summary>
    public static string Build(ProductInfo product, string template)
    {
        var sb = new StringBuilder();
        sb.Append("Write the ").Append(template).Append(" of this product.\n");
        sb.Append("Product: ").Append(product.Title).Append('\n');
        if (product.Category.Length > 0) sb.Append("Category: ").Append(product.Category).Append('\n');
        foreach (var (name, value) in product.Attributes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sb.Append(name).Append(": ").Append(value).Append('\n');
        sb.Append("Price: ").Append(product.Price.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append(char.ToUpperInvariant(template[0])).Append(template.AsSpan(1)).Append(':');
        return sb.ToString();
    }
}
