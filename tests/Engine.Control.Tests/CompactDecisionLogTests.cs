using System.Text;
using Engine.Control.Feedback;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Engine.Control.Tests;

/// <summary>The stats shards' compact decision log (<see cref="DecisionLog"/>: a slot ring and a UTF-8 byte ring)
/// against the list form it replaced (<see cref="ListFormLog"/>, the old ArmStatsGrain logic kept here as the
/// reference): same decisions exported, same rewards joined, on random inputs, through wrap-around, growth, the byte
/// limit, resizing and a storage round trip.</summary>
public class CompactDecisionLogTests
{
    private static readonly FeedbackKind[] RewardKinds = [FeedbackKind.Click, FeedbackKind.AddToCart, FeedbackKind.Purchase, FeedbackKind.Return];
    private static readonly ArmKey[] Arms = [new("exp", "treatment", "m1"), new("exp", "shadow", "m1")];

    /// <summary>The list-form log of ArmStatsGrain before the compact form: one record per decision, the newest
    /// <c>capacity</c> kept, rewards joined per (recommendation, product).</summary>
    private sealed class ListFormLog(int capacity)
    {
        public readonly List<LoggedDecision> Log = [];

        public bool Add(string id, ArmKey arm, string context, DateTimeOffset at, bool shadow, IReadOnlyList<ExposedAction> actions)
        {
            if (Log.Any(d => d.RecommendationId == id)) return false;
            Log.Add(new LoggedDecision(id, arm, context, at, shadow,
                [.. actions.Select((a, i) => new LoggedAction(a.ProductId, i + 1, a.Probability, 0, 0, 0, 0, 0))], null));
            if (Log.Count > capacity) Log.RemoveRange(0, Log.Count - capacity);
            return true;
        }

        public bool Join(string id, string product, FeedbackKind kind, double reward, DateTimeOffset now)
        {
            var i = Log.FindIndex(d => d.RecommendationId == id);
            if (i < 0) return false;
            var actions = Log[i].Actions.ToArray();
            var a = Array.FindIndex(actions, x => x.ProductId == product);
            if (a < 0) return false;
            var x = actions[a];
            actions[a] = kind switch
            {
                FeedbackKind.Click => x with { Clicks = x.Clicks + 1, Reward = x.Reward + reward },
                FeedbackKind.AddToCart => x with { Carts = x.Carts + 1, Reward = x.Reward + reward },
                FeedbackKind.Purchase => x with { Purchases = x.Purchases + 1, Reward = x.Reward + reward },
                _ => x with { Returns = x.Returns + 1, Reward = x.Reward + reward },
            };
            Log[i] = Log[i] with { Actions = actions, UpdatedAt = now };
            return true;
        }
    }

    private static void AssertSame(IReadOnlyList<LoggedDecision> expected, IReadOnlyList<LoggedDecision> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            Assert.Equal((e.RecommendationId, e.Arm, e.Context, e.ServedAt, e.Shadow, e.UpdatedAt), (a.RecommendationId, a.Arm, a.Context, a.ServedAt, a.Shadow, a.UpdatedAt));
            Assert.Equal(e.Actions, a.Actions); // LoggedAction: value equality
        }
    }

    // ASCII, JSON punctuation and 2-, 3- and 4-byte UTF-8 (a surrogate pair) characters.
    private static readonly string[] Alphabet = [.. "abcdefghijklmnopqrstuvwxyz0123456789{}[]\":,.-".Select(c => c.ToString()), "é", "€", "😀"];

    private static string RandomText(Random rng, int length)
    {
        var sb = new StringBuilder(length);
        while (sb.Length < length) sb.Append(Alphabet[rng.Next(Alphabet.Length)]);
        return sb.ToString();
    }

    /// <summary>Drives both logs with the same random exposures (some replayed, some with UTF-8 contexts, 0–12 products)
    /// and rewards (some for decisions already dropped, some for products not shown); returns the compact log.</summary>
    private static DecisionLog Drive(int seed, int capacity, int exposures, int maxContext, ListFormLog reference, DecisionLog? log = null, int? joinWindow = null, bool replays = true)
    {
        var window = joinWindow ?? capacity * 2; // rewards go to one of the latest `window` recommendation ids
        var rng = new Random(seed);
        log ??= new DecisionLog(capacity);
        var t0 = new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
        var ids = new List<string>();
        for (var n = 0; n < exposures; n++)
        {
            var id = rng.Next(10) == 0 && ids.Count > 0 && replays ? ids[rng.Next(ids.Count)] : $"rec-{seed}-{n}-{RandomText(rng, rng.Next(0, 6))}";
            ids.Add(id);
            var actions = Enumerable.Range(0, rng.Next(0, 13)).Select(i => new ExposedAction($"p-{rng.Next(50)}-{i}", (float)rng.NextDouble())).ToArray();
            var context = RandomText(rng, rng.Next(0, maxContext));
            var arm = Arms[rng.Next(Arms.Length)];
            var at = t0.AddMilliseconds(n);
            var shadow = rng.Next(4) == 0;
            var expected = reference.Add(id, arm, context, at, shadow, actions);
            var added = rng.Next(2) == 0
                ? log.Add(id, arm, Encoding.UTF8.GetBytes(context), "", at, shadow, actions) // the server's form
                : log.Add(id, arm, default, context, at, shadow, actions);                   // a string context
            Assert.Equal(expected, added);
            for (var r = rng.Next(3); r > 0; r--)
            {
                var target = ids[rng.Next(Math.Max(0, ids.Count - window), ids.Count)];
                var product = rng.Next(5) == 0 ? "not-shown" : $"p-{rng.Next(50)}-{rng.Next(12)}";
                var kind = RewardKinds[rng.Next(RewardKinds.Length)];
                var reward = kind == FeedbackKind.Return ? -1.0 : rng.NextDouble();
                var now = at.AddSeconds(r);
                Assert.Equal(reference.Join(target, product, kind, reward, now), log.Join(target, product, kind, reward, now));
            }
        }
        return log;
    }

    [Theory]
    [InlineData(1, 50, 600, 300)]   // small contexts: slots full first, the byte ring wraps many times
    [InlineData(2, 20, 400, 3000)]  // contexts of up to 3 KB: padding at the wrap, growth
    [InlineData(3, 500, 300, 2000)] // never full
    public void Random_exposures_and_rewards_export_the_same_decisions_as_the_list_form(int seed, int capacity, int exposures, int maxContext)
    {
        var reference = new ListFormLog(capacity);
        var log = Drive(seed, capacity, exposures, maxContext, reference);
        AssertSame(reference.Log, log.Latest(int.MaxValue));
        AssertSame(reference.Log.TakeLast(7).ToList(), log.Latest(7));
        Assert.Equal(reference.Log.Count, log.Count);
    }

    [Fact]
    public void The_byte_ring_wraps_around_and_keeps_the_newest_decisions_in_order()
    {
        var capacity = 8;
        var reference = new ListFormLog(capacity);
        var log = Drive(4, capacity, 2000, 1500, reference); // ~2000 × 0.9 KB through a 64 KB ring: ~25 wraps
        Assert.Equal(DecisionLog.InitialBytes, log.ByteCapacity); // 8 decisions never need more
        AssertSame(reference.Log, log.Latest(capacity));
    }

    [Fact]
    public void The_byte_ring_grows_while_the_log_fills_and_keeps_what_it_held()
    {
        var reference = new ListFormLog(2000);
        var log = Drive(5, 2000, 400, 2000, reference);
        Assert.True(log.ByteCapacity > DecisionLog.InitialBytes, $"{log.ByteCapacity}");
        Assert.Equal(reference.Log.Count, log.Count);
        AssertSame(reference.Log, log.Latest(int.MaxValue));
    }

    [Fact]
    public void At_the_byte_limit_the_oldest_decisions_make_room_and_the_rest_stay_exact()
    {
        var log = new DecisionLog(1000, maxBytes: 16 * 1024);
        var reference = new ListFormLog(1000);
        Drive(6, 1000, 300, 1000, reference, log, joinWindow: 3, replays: false); // rewards for decisions both still hold
        Assert.Equal(16 * 1024, log.ByteCapacity);
        Assert.InRange(log.Count, 5, 299); // bounded by bytes, not by the 1,000 slots
        AssertSame(reference.Log.TakeLast(log.Count).ToList(), log.Latest(int.MaxValue));
    }

    [Fact]
    public void A_decision_larger_than_the_ring_is_kept_alone()
    {
        var log = new DecisionLog(4, maxBytes: 4096);
        log.Add("a", Arms[0], default, "small", DateTimeOffset.UnixEpoch, false, [new ExposedAction("p", 1f)]);
        var big = new string('x', 10_000);
        Assert.True(log.Add("b", Arms[0], default, big, DateTimeOffset.UnixEpoch, false, [new ExposedAction("p", 1f)]));
        Assert.Equal(big, log.Latest(1)[0].Context);
        Assert.True(log.Join("b", "p", FeedbackKind.Click, 0.1, DateTimeOffset.UnixEpoch.AddDays(1)));
        Assert.Equal(1, log.Latest(1)[0].Actions[0].Clicks);
    }

    [Fact]
    public void Resizing_keeps_the_newest_decisions_with_their_rewards()
    {
        var reference = new ListFormLog(100);
        var log = Drive(7, 100, 300, 500, reference);
        var smaller = log.Resized(30);
        AssertSame(reference.Log.TakeLast(30).ToList(), smaller.Latest(int.MaxValue));
        var larger = log.Resized(1000);
        AssertSame(reference.Log, larger.Latest(int.MaxValue));
        // Still joinable after the move (the index is rebuilt).
        var last = reference.Log[^1];
        if (last.Actions.Count > 0)
            Assert.True(larger.Join(last.RecommendationId, last.Actions[0].ProductId, FeedbackKind.Purchase, 1.0, DateTimeOffset.UtcNow));
    }

    [Fact]
    public void A_list_form_log_moves_over_with_its_rewards()
    {
        var reference = new ListFormLog(200);
        Drive(8, 200, 150, 400, reference);
        var log = new DecisionLog(200);
        foreach (var d in reference.Log) Assert.True(log.Add(d));
        Assert.False(log.Add(reference.Log[^1])); // a repeated id
        AssertSame(reference.Log, log.Latest(int.MaxValue));
    }

    [Fact]
    public void The_storage_serializer_round_trips_the_log_and_joins_continue_after_it()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var reference = new ListFormLog(64);
        var log = Drive(9, 64, 500, 800, reference);
        var state = new ArmStatsState { Counters = new ArmCounters(1, 2, 3, 4, 5, 6, 7, 8), DecisionLog = log };
        var copy = serializer.Deserialize<ArmStatsState>(serializer.SerializeToArray(state))!;
        Assert.Equal(state.Counters, copy.Counters);
        AssertSame(reference.Log, copy.DecisionLog!.Latest(int.MaxValue));
        Drive(10, 64, 200, 800, reference, copy.DecisionLog); // same seed stream on both: still equal after more adds and joins
        AssertSame(reference.Log, copy.DecisionLog!.Latest(int.MaxValue));
    }
}
