using System.Text;
using Engine.Control.Feedback;
using Engine.Control.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Engine.Control.Tests;

/// <summary>A session's held exposures (<see cref="HeldExposures"/>: ids in fixed UTF-8 slots, parallel arrays) against
/// the list form it replaced (the old session logic, kept here as the reference): same ids held, same arm and shadow flag
/// found for a reward, on random inputs, through growth, wrap-around, long and non-ASCII ids, resizing and a storage round
/// trip.</summary>
public class HeldExposuresTests
{
    private static readonly ArmKey[] Arms = [new("exp", "treatment", "m1"), new("exp", "control", "m1"), ArmKey.Unassigned("m2")];

    /// <summary>The session's list form: newest last, a repeated id not added, the oldest dropped past the capacity.</summary>
    private sealed class ListForm(int capacity)
    {
        public readonly List<(string Id, ArmKey Arm, DateTimeOffset At, bool Shadow)> Held = [];

        public bool Add(string id, ArmKey arm, DateTimeOffset at, bool shadow)
        {
            if (Held.Any(x => x.Id == id)) return false;
            Held.Add((id, arm, at, shadow));
            if (Held.Count > capacity) Held.RemoveAt(0);
            return true;
        }

        public (ArmKey Arm, bool Shadow)? Lookup(string id) =>
            Held.FindLastIndex(x => x.Id == id) is var i and >= 0 ? (Held[i].Arm, Held[i].Shadow) : null;
    }

    private static string RandomId(Random rng, int serial) => rng.Next(10) switch
    {
        0 => $"rec-{new string('x', 40 + rng.Next(30))}-{serial}",   // longer than a slot: kept as a string
        1 => $"rec-é€😀-{serial}",                                    // multi-byte UTF-8
        2 => $"rec-1a2b3c4d-{serial}~shadow",
        _ => $"rec-1a2b3c4d-{serial}",
    };

    private static void Drive(Random rng, HeldExposures held, ListForm reference, int steps, ref int serial)
    {
        var issued = new List<string>();
        for (var s = 0; s < steps; s++)
        {
            var id = issued.Count > 0 && rng.Next(5) == 0 ? issued[rng.Next(issued.Count)] : RandomId(rng, serial++); // some repeats
            issued.Add(id);
            var (arm, at, shadow) = (Arms[rng.Next(Arms.Length)], DateTimeOffset.UnixEpoch.AddSeconds(serial), rng.Next(4) == 0);
            var added = reference.Add(id, arm, at, shadow);
            Assert.Equal(!added, held.Contains(id));
            if (added) held.Add(id, arm, at, shadow);
            var probe = rng.Next(3) == 0 ? RandomId(rng, rng.Next(serial + 5)) : issued[rng.Next(issued.Count)];
            Assert.Equal(reference.Lookup(probe), held.Lookup(probe));
        }
        Assert.Equal(reference.Held, held.ToList());
    }

    [Theory]
    [InlineData(1, 64, 500)]
    [InlineData(2, 64, 30)]   // never full: the arrays grow, nothing dropped
    [InlineData(3, 1, 50)]
    [InlineData(4, 5, 200)]
    public void Random_exposures_hold_and_find_the_same_as_the_list_form(int seed, int capacity, int steps)
    {
        var rng = new Random(seed);
        var serial = 0;
        Drive(rng, new HeldExposures(capacity), new ListForm(capacity), steps, ref serial);
    }

    [Fact]
    public void The_storage_serializer_round_trips_the_window_and_it_keeps_working_after()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var rng = new Random(7);
        var serial = 0;
        var (held, reference) = (new HeldExposures(16), new ListForm(16));
        Drive(rng, held, reference, 40, ref serial);
        var state = new SessionState { HeldExposures = held };
        var copy = serializer.Deserialize<SessionState>(serializer.SerializeToArray(state))!.HeldExposures!;
        Assert.Equal(reference.Held, copy.ToList());
        Drive(rng, copy, reference, 40, ref serial);

        // A window of 3 written small: its arrays are sized to what it holds, not to the capacity.
        var few = new HeldExposures(64);
        for (var i = 0; i < 3; i++) few.Add($"rec-1a2b3c4d-{i}", Arms[0], DateTimeOffset.UnixEpoch, false);
        Assert.True(serializer.SerializeToArray(few).Length < 64 * HeldExposures.InlineIdBytes / 4, $"{serializer.SerializeToArray(few).Length} bytes");
    }

    [Fact]
    public void Resizing_keeps_the_newest()
    {
        var held = new HeldExposures(10);
        for (var i = 0; i < 25; i++) held.Add($"r{i}", Arms[i % 3], DateTimeOffset.UnixEpoch.AddSeconds(i), i % 2 == 0);
        var smaller = held.Resized(4);
        Assert.Equal(held.ToList().Skip(6), smaller.ToList());
        Assert.Equal(held.ToList(), held.Resized(32).ToList());
        Assert.Null(smaller.Lookup("r20"));
        Assert.Equal((Arms[0], false), smaller.Lookup("r21"));
    }

    [Fact]
    public void An_id_at_the_slot_limit_is_inline_and_one_byte_more_is_kept_as_a_string()
    {
        var held = new HeldExposures(4);
        var fits = new string('a', HeldExposures.InlineIdBytes);
        var longer = new string('a', HeldExposures.InlineIdBytes + 1);
        held.Add(fits, Arms[0], DateTimeOffset.UnixEpoch, false);
        Assert.False(held.Contains(longer));
        held.Add(longer, Arms[1], DateTimeOffset.UnixEpoch, true);
        Assert.Equal((Arms[0], false), held.Lookup(fits));
        Assert.Equal((Arms[1], true), held.Lookup(longer));
        Assert.Equal(HeldExposures.InlineIdBytes, Encoding.UTF8.GetByteCount(fits));
    }
}
