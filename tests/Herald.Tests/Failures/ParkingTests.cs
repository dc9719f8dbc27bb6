using Herald.DeadLetters;
using Herald.Subscriptions;

namespace Herald.Tests.Failures;

/// <summary>What happens to a key once one of its events is dead-lettered: parked (its later
/// events follow it into the dead letters, in order) or skipped (it goes on).</summary>
public class ParkingTests
{
    private const string Group = "billing";

    [Theory]
    [InlineData(new int[0])]    // later events wait in the main topic behind the failing one, then are parked
    [InlineData(new[] { 100 })] // later events wait in the retry topic behind it, then are parked from there
    public async Task In_park_mode_later_events_of_a_dead_lettered_key_follow_it_into_the_dead_letters_in_order(int[] delayed)
    {
        using var dir = new TempDirectory("park");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(1, delayed), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e is { Account: "A", Seq: 0 })));
        var events = new List<(string, int)>();
        for (var i = 0; i < 5; i++)
        {
            events.Add(("B", i));
            events.Add(("A", i));
        }
        await host.PublishAllAsync(events);

        var letters = await host.WaitForDeadLettersAsync(Group, 5);
        await Eventually.WaitAsync(() => log.Handled("B").Count == 5, what: () => "B handled");
        Assert.Equal([0, 1, 2, 3, 4], log.HandledSeqs("B"));
        Assert.Empty(log.Handled("A"));
        Assert.All(log.Of("A"), c => Assert.Equal(0, c.Seq)); // A1..A4 never reached the handler

        var head = letters[0];
        Assert.Equal(DeadLetterReason.Failed, head.Reason);
        Assert.Equal(1, head.OriginalOffset); // B0 is at 0, A0 at 1
        Assert.Null(head.ParkedBehind);
        var parked = letters.Skip(1).ToList();
        Assert.All(parked, l =>
        {
            Assert.Equal(DeadLetterReason.Parked, l.Reason);
            Assert.Equal("A", l.KeyText);
            Assert.Equal(head.OriginalOffset, l.ParkedBehind);
            Assert.Equal(0, l.Attempts);
            Assert.Equal(head.ExceptionType, l.ExceptionType);
            Assert.Equal(head.FailureFrame, l.FailureFrame);
            Assert.Equal(head.FailureGroup, l.FailureGroup);
            Assert.Equal(nameof(Charge), l.EventType);
        });
        // In their original order, each with its own original offset (A1..A4 at 3, 5, 7, 9).
        Assert.Equal([3L, 5, 7, 9], parked.Select(l => l.OriginalOffset));
        Assert.Equal([1, 2, 3, 4], parked.Select(l => Payload.Charge(l.Value).Seq));

        // The key stays parked: a new event of A follows too, behind the same failure.
        await host.PublishAsync("A", 5);
        await host.PublishAsync("B", 5);
        await Eventually.WaitAsync(() => log.Handled("B").Count == 6, what: () => "B5 handled");
        var after = await host.WaitForDeadLettersAsync(Group, 6);
        Assert.Equal(DeadLetterReason.Parked, after[^1].Reason);
        Assert.Equal(head.OriginalOffset, after[^1].ParkedBehind);
        Assert.Equal(10, after[^1].OriginalOffset);
        Assert.Empty(log.Handled("A"));
    }

    [Fact]
    public async Task In_skip_mode_the_key_goes_on_after_its_dead_letter_in_order()
    {
        using var dir = new TempDirectory("skip");
        var log = new CallLog();
        var options = Fast.Retry(1, 100).Then(o => o.DeadLetterMode = DeadLetterMode.Skip);
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, options, (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e is { Account: "A", Seq: 0 })));
        await host.PublishAllAsync(Enumerable.Range(0, 5).Select(i => ("A", i)));

        await Eventually.WaitAsync(() => log.Handled("A").Count == 4, what: () => $"A1..A4 handled (have {string.Join(",", log.HandledSeqs("A"))})");
        await Eventually.QuietPeriod();
        Assert.Equal([1, 2, 3, 4], log.HandledSeqs("A"));
        // They waited for A0 to be dead-lettered: order holds through the retries.
        var lastAttempt = log.Of("A").Last(c => c.Seq == 0);
        Assert.Equal(4, lastAttempt.Attempt);
        Assert.All(log.Handled("A"), c => Assert.True(c.Ticks > lastAttempt.Ticks, $"A{c.Seq} overtook A0"));
        var letter = Assert.Single(await host.ListAsync(Group));
        Assert.Equal(DeadLetterReason.Failed, letter.Reason);
        Assert.Equal(0, letter.OriginalOffset);

        // Nothing parks: the next event of A is handled at once.
        await host.PublishAsync("A", 5);
        await Eventually.WaitAsync(() => log.Handled("A").Count == 5, what: () => "A5 handled");
        Assert.Single(await host.ListAsync(Group));
    }

    [Fact]
    public async Task Parking_one_key_leaves_the_other_keys_of_its_partition_running()
    {
        using var dir = new TempDirectory("park");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e is { Account: "A", Seq: 0 })));
        await host.PublishAsync("A", 0);
        await host.WaitForDeadLettersAsync(Group, 1);

        // While A is parked, many events of many keys, A's among them.
        var events = new List<(string, int)>();
        for (var seq = 1; seq <= 5; seq++)
            foreach (var key in new[] { "A", "B", "C", "D" })
                events.Add((key, seq));
        await host.PublishAllAsync(events);
        await Eventually.WaitAsync(() => log.Count(c => c.Succeeded) == 15, what: () => "B, C and D handled");
        foreach (var key in new[] { "B", "C", "D" }) Assert.Equal([1, 2, 3, 4, 5], log.HandledSeqs(key));
        var letters = await host.WaitForDeadLettersAsync(Group, 6);
        Assert.Equal([0L, 1, 5, 9, 13, 17], letters.Select(l => l.OriginalOffset));
        Assert.Empty(log.Handled("A"));
    }
}
