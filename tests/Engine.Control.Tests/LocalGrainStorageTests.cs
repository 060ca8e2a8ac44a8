using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Engine.Control.Tests;

/// <summary><see cref="LocalGrainStorage"/> (engine serve without Redis): states round-trip as copies, ETags guard writes
/// and clears as Orleans' memory storage does, and a warmed rewrite allocates no copy of the state.</summary>
public class LocalGrainStorageTests
{
    private static readonly IServiceProvider Services = new ServiceCollection().AddSerializer().BuildServiceProvider();

    private static LocalGrainStorage NewStorage() => new(
        new ExactSizeGrainStorageSerializer(Services.GetRequiredService<Serializer>()), Services.GetRequiredService<IActivatorProvider>());

    private static readonly GrainId Alice = GrainId.Create("session", "alice"), Bob = GrainId.Create("session", "bob");

    private static SessionState State(float x) => new() { Profile = [x, 2 * x], Recent = ["p1"], EventsApplied = 3 };

    [Fact]
    public async Task A_missing_state_reads_as_a_new_one_and_a_written_state_reads_back_as_a_copy()
    {
        var storage = NewStorage();
        var read = new GrainState<SessionState>();
        await storage.ReadStateAsync("session", Alice, read);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
        Assert.NotNull(read.State);
        Assert.Empty(read.State!.Profile);

        var written = new GrainState<SessionState>(State(1));
        await storage.WriteStateAsync("session", Alice, written);
        Assert.True(written.RecordExists);
        Assert.NotNull(written.ETag);
        written.State!.Profile[0] = 99; // the store holds its own copy

        var back = new GrainState<SessionState>();
        await storage.ReadStateAsync("session", Alice, back);
        Assert.True(back.RecordExists);
        Assert.Equal(written.ETag, back.ETag);
        Assert.Equal([1f, 2f], back.State!.Profile);
        Assert.Equal(3, back.State!.EventsApplied);

        var other = new GrainState<SessionState>();
        await storage.ReadStateAsync("session", Bob, other); // another grain, and another state name, are apart
        Assert.False(other.RecordExists);
        await storage.ReadStateAsync("other", Alice, other);
        Assert.False(other.RecordExists);
    }

    [Fact]
    public async Task A_write_or_clear_with_a_stale_ETag_fails_and_changes_nothing()
    {
        var storage = NewStorage();
        var first = new GrainState<SessionState>(State(1));
        await storage.WriteStateAsync("session", Alice, first);
        var stale = new GrainState<SessionState>(State(5)) { ETag = null }; // a second activation that never read
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("session", Alice, stale));
        var firstETag = first.ETag;
        await storage.WriteStateAsync("session", Alice, first); // the owner writes on
        Assert.NotEqual(firstETag, first.ETag);
        var old = new GrainState<SessionState>(State(7)) { ETag = firstETag };
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("session", Alice, old));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync("session", Alice, old));

        var back = new GrainState<SessionState>();
        await storage.ReadStateAsync("session", Alice, back);
        Assert.Equal([1f, 2f], back.State!.Profile);

        await storage.ClearStateAsync("session", Alice, back);
        Assert.False(back.RecordExists);
        Assert.Equal(0, storage.Count);
        var after = new GrainState<SessionState>();
        await storage.ReadStateAsync("session", Alice, after);
        Assert.False(after.RecordExists);
    }

    /// <summary>A checkpoint of a state whose size did not grow overwrites its buffer: nothing of the state's size is
    /// allocated, so nothing of it survives into gen 2 (a new array per write was promoted with every collection).</summary>
    [Fact]
    public async Task A_warmed_rewrite_of_a_state_that_did_not_grow_allocates_no_copy_of_it()
    {
        var storage = NewStorage();
        var state = new GrainState<SessionState>(new SessionState { Profile = new float[384], SeenEvents = [.. Enumerable.Range(0, 32).Select(_ => Guid.NewGuid())] });
        for (var i = 0; i < 3; i++) await storage.WriteStateAsync("session", Alice, state);
        int size = new ExactSizeGrainStorageSerializer(Services.GetRequiredService<Serializer>()).Serialize(state.State).ToMemory().Length;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++) _ = storage.WriteStateAsync("session", Alice, state); // completes synchronously
        long perWrite = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        Assert.True(perWrite < 256, $"a rewrite of a {size} B state allocated {perWrite} B");

        state.State!.Profile[0] = 42f; // the overwritten bytes are the new state's
        await storage.WriteStateAsync("session", Alice, state);
        var back = new GrainState<SessionState>();
        await storage.ReadStateAsync("session", Alice, back);
        Assert.Equal(42f, back.State!.Profile[0]);
        Assert.Equal(state.ETag, back.ETag);
    }
}
