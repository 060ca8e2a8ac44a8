using Engine.Control.Feedback;
using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Storage;

namespace Engine.Control.Tests;

/// <summary>The control storage's state serializer (<see cref="ExactSizeGrainStorageSerializer"/>) writes the same bytes as
/// Orleans' stock binary one, reads them back (states written before it stay readable), and a warmed write allocates little
/// more than the state's own bytes (the stock one grows a new buffer by doubling per write).</summary>
public class ExactSizeGrainStorageSerializerTests
{
    private static readonly Serializer Serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

    private static SessionState State(int seed)
    {
        var random = new Random(seed);
        var state = new SessionState
        {
            Profile = Enumerable.Range(0, 384).Select(_ => random.NextSingle()).ToArray(),
            ProfileTicks = random.NextInt64(),
            Recent = Enumerable.Range(0, 20).Select(i => $"p{random.Next(10_000)}").ToList(),
            Cart = new Dictionary<string, int> { ["p1"] = 2 },
            SeenEvents = Enumerable.Range(0, 64).Select(_ => Guid.NewGuid()).ToList(),
            HeldExposures = new HeldExposures(64),
        };
        var arm = ArmKey.Unassigned("m1");
        for (var i = 0; i < 64; i++) state.HeldExposures.Add($"rec-{seed:x8}-{i}", arm, DateTimeOffset.UnixEpoch.AddSeconds(i), false);
        return state;
    }

    [Fact]
    public void Writes_the_stock_bytes_and_reads_them_back()
    {
        var stock = new OrleansGrainStorageSerializer(Serializer);
        var exact = new ExactSizeGrainStorageSerializer(Serializer);
        for (var seed = 1; seed <= 3; seed++)
        {
            var state = State(seed);
            var bytes = exact.Serialize(state).ToArray();
            Assert.Equal(stock.Serialize(state).ToArray(), bytes);
            var back = exact.Deserialize<SessionState>(new BinaryData(bytes))!;
            Assert.Equal(state.Profile, back.Profile);
            Assert.Equal(state.SeenEvents, back.SeenEvents);
            Assert.Equal(state.HeldExposures!.ToList().Select(e => e.RecommendationId), back.HeldExposures!.ToList().Select(e => e.RecommendationId));
            Assert.Equal(state.Recent, stock.Deserialize<SessionState>(new BinaryData(bytes))!.Recent);
        }
    }

    [Fact]
    public void A_warmed_write_allocates_about_the_state_once()
    {
        var state = State(7);
        var stock = new OrleansGrainStorageSerializer(Serializer);
        var exact = new ExactSizeGrainStorageSerializer(Serializer);
        int size = exact.Serialize(state).ToMemory().Length;
        for (var i = 0; i < 3; i++) { exact.Serialize(state); stock.Serialize(state); }
        long Allocated(IGrainStorageSerializer s)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 10; i++) s.Serialize(state);
            return (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        }
        long exactBytes = Allocated(exact), stockBytes = Allocated(stock);
        // The state's bytes once, plus a few small objects (BinaryData, the serializer session's bookkeeping).
        Assert.True(exactBytes < size + 1024, $"exact-size write allocated {exactBytes} B for a {size} B state (stock: {stockBytes} B)");
    }

    /// <summary>A state past a thread's buffer (a stats shard's ~3 MB decision log) is written through one shared buffer
    /// sized from the type's last write: a warmed write allocates no buffer (a fresh one grown by doubling was ~8 MB of
    /// large-object allocations per write) and the bytes stay the stock ones.</summary>
    [Fact]
    public void A_warmed_write_of_a_large_state_allocates_no_buffer()
    {
        var state = new byte[3 << 20];
        new Random(5).NextBytes(state);
        var exact = new ExactSizeGrainStorageSerializer(Serializer);
        Assert.Equal(new OrleansGrainStorageSerializer(Serializer).Serialize(state).ToArray(), exact.Serialize(state).ToArray());
        for (var i = 0; i < 2; i++) exact.Serialize(state, 0, static (bytes, _) => bytes.Length);

        long before = GC.GetAllocatedBytesForCurrentThread();
        int length = 0;
        for (var i = 0; i < 5; i++) length = exact.Serialize(state, 0, static (bytes, _) => bytes.Length);
        long perWrite = (GC.GetAllocatedBytesForCurrentThread() - before) / 5;

        Assert.True(length > state.Length, $"{length} B serialized");
        Assert.True(perWrite < 64 * 1024, $"a warmed write of a {length} B state allocated {perWrite} B");
    }
}
