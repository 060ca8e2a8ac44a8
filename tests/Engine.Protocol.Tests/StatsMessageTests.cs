using System.Buffers;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Protocol.Tests;

/// <summary>StatsResult member 1 (Experiments) was added to a frozen message: both directions of
/// version skew must still read, and the nested per-arm figures must pass the body validator.</summary>
public class StatsMessageTests
{
    [Fact]
    public void Stats_result_with_experiments_validates_and_round_trips()
    {
        var result = new StatsResult
        {
            Entries = [new StatEntry { Name = "control.events_persisted", Value = 7 }],
            Experiments =
            [
                new ExperimentStat
                {
                    Id = "exp1", Status = "Running", ConfigVersion = 3, SrmChecked = true, SrmChiSquare = 0.4, SrmCritical = 10.8,
                    Arms = [new ArmStat { Arm = "treatment", ModelVersion = "m1", Exposures = 10, Clicks = 2, RewardSum = 1.5,
                        ClickRate = new RateStat { Value = 0.2, Low = 0.057, High = 0.51 } }],
                },
            ],
        };
        var body = new ReadOnlySequence<byte>(MessageSerializer.ToBytes(result));
        BodyValidator.Validate(typeof(StatsResult), body);
        var back = MessageSerializer.Deserialize<StatsResult>(body);
        var arm = Assert.Single(Assert.Single(back.Experiments).Arms);
        Assert.Equal(("treatment", "m1", 10L, 2L, 1.5), (arm.Arm, arm.ModelVersion, arm.Exposures, arm.Clicks, arm.RewardSum));
        Assert.Equal(0.51, arm.ClickRate.High);
        Assert.True(back.Experiments[0].SrmChecked);
    }

    [Fact]
    public void A_stats_result_from_before_experiments_still_reads_with_none()
    {
        // 01 member; varint length 4; Entries: int32 count 0 (what a version-1 server without
        // member 1 sends).
        var body = new ReadOnlySequence<byte>(Convert.FromHexString("01" + "04" + "00000000"));
        BodyValidator.Validate(typeof(StatsResult), body);
        var back = MessageSerializer.Deserialize<StatsResult>(body);
        Assert.Empty(back.Entries);
        Assert.Empty(back.Experiments);
    }

    [Fact]
    public void A_negative_arm_count_is_refused_before_memorypack_reads_it()
    {
        var good = MessageSerializer.ToBytes(new StatsResult { Experiments = [new ExperimentStat { Id = "e", Arms = [new ArmStat()] }] });
        // The last ArmStat is the body's tail; the Arms count is the int32 right before it. Find it:
        // it is 1 (01000000) followed by the ArmStat header (14 members = 0x0E).
        int at = IndexOf(good, [0x01, 0x00, 0x00, 0x00, 0x0E]);
        Assert.True(at > 0);
        good[at] = 0xFE; good[at + 1] = 0xFF; good[at + 2] = 0xFF; good[at + 3] = 0xFF; // -2
        var e = Assert.Throws<ProtocolException>(() => BodyValidator.Validate(typeof(StatsResult), new ReadOnlySequence<byte>(good)));
        Assert.Equal(ErrorCode.BadBody, e.Code);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
