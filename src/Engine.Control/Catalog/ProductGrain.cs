namespace Engine.Control.Catalog;

/// <summary>Persisted state of a product.</summary>
[GenerateSerializer]
public sealed class ProductState
{
    [Id(0)] public ProductInfo? Info { get; set; }
    [Id(1)] public long Traffic { get; set; }
}

/// <summary>One product: validates changes, stamps each with a new catalog version.</summary>
internal sealed class ProductGrain(
    [PersistentState("product", ControlStorage.Name)] IPersistentState<ProductState> state) : Grain, IProductGrain
{
    async Task<ProductInfo> IProductGrain.Upsert(ProductUpdate u)
    {
        var id = this.GetPrimaryKeyString();
        if (string.IsNullOrWhiteSpace(u.Title)) throw new ArgumentException($"product '{id}': title must not be empty");
        if (u.Price < 0) throw new ArgumentException($"product '{id}': price {u.Price} is negative");
        if (u.Stock < 0) throw new ArgumentException($"product '{id}': stock {u.Stock} is negative");
        if (!(u.BackorderRisk is >= 0 and <= 1)) throw new ArgumentException($"product '{id}': backorder risk {u.BackorderRisk} is outside [0, 1]");
        if (u.Embedding is { } e && e.Any(x => !float.IsFinite(x))) throw new ArgumentException($"product '{id}': embedding has a non-finite value");
        if (state.State.Info is { } old && Same(old, u)) return old;
        return await Commit(new ProductInfo(id, u.Title, u.Category, u.Attributes, u.Price, u.Stock, u.BackorderRisk, u.Embedding, 0));
    }

    async Task<ProductInfo> IProductGrain.AdjustStock(int delta)
    {
        var info = state.State.Info ?? throw new UnknownEntityException($"product '{this.GetPrimaryKeyString()}' is not in the catalog");
        var stock = info.Stock + delta;
        if (stock < 0) throw new ArgumentException($"product '{info.ProductId}': stock {info.Stock} cannot drop by {-delta}");
        return delta == 0 ? info : await Commit(info with { Stock = stock });
    }

    private async Task<ProductInfo> Commit(ProductInfo info)
    {
        var version = await GrainFactory.GetGrain<ICatalogGrain>(ICatalogGrain.Default).RecordChange(info.ProductId);
        state.State.Info = info with { Version = version };
        await state.WriteStateAsync();
        return state.State.Info;
    }

    private static bool Same(ProductInfo a, ProductUpdate b) =>
        a.Title == b.Title && a.Category == b.Category && a.Price == b.Price && a.Stock == b.Stock &&
        a.BackorderRisk == b.BackorderRisk &&
        a.Attributes.Count == b.Attributes.Count && a.Attributes.All(kv => b.Attributes.TryGetValue(kv.Key, out var v) && v == kv.Value) &&
        (a.Embedding ?? []).AsSpan().SequenceEqual(b.Embedding ?? []) && (a.Embedding is null) == (b.Embedding is null);

    Task<ProductInfo?> IProductGrain.Get() => Task.FromResult(state.State.Info);

    async Task IProductGrain.AddTraffic(long views)
    {
        state.State.Traffic += views;
        await state.WriteStateAsync();
    }

    Task<long> IProductGrain.GetTraffic() => Task.FromResult(state.State.Traffic);
}
