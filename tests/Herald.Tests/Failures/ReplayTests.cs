using Herald.DeadLetters;

namespace Herald.Tests.Failures;

/// <summary>Resolving dead letters: replay to the failing group or to the topic, discard; by key,
/// by id, by failure group.</summary>
public class ReplayTests
{
    private const string Billing = "billing";
    private const string Audit = "audit";

    /// <summary>A switch the handlers read: while on, the chosen events fail.</summary>
    private sealed class Outage
    {
        private volatile bool _on = true;
        public bool On => _on;
        public void End() => _on = false;
    }

    [Fact]
    public async Task Replaying_a_parked_key_to_its_group_runs_its_events_in_order_and_then_new_events_flow()
    {
        using var dir = new TempDirectory("replay");
        var log = new CallLog();
        var outage = new Outage();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => outage.On && e is { Account: "A", Seq: 0 })),
            (Audit, Fast.Retry(0), Fast.NoFailures(log)));
        await host.PublishAllAsync([("A", 0), ("A", 1), ("B", 0), ("A", 2)]);
        await host.WaitForDeadLettersAsync(Billing, 3);
        await host.PublishAsync("A", 3); // published while the key is parked
        var letters = await host.WaitForDeadLettersAsync(Billing, 4);
        Assert.Equal([DeadLetterReason.Failed, DeadLetterReason.Parked, DeadLetterReason.Parked, DeadLetterReason.Parked], letters.Select(l => l.Reason));
        Assert.Empty(log.Handled("A", Billing));
        await Eventually.WaitAsync(() => log.Handled("A", Audit).Count == 4, what: () => "audit handled A0..A3");

        outage.End();
        Assert.Equal(4, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.Key("A")));
        await Eventually.WaitAsync(() => log.Handled("A", Billing).Count == 4, what: () => $"billing handled the replayed A (have {string.Join(",", log.HandledSeqs("A", Billing))})");
        Assert.Equal([0, 1, 2, 3], log.HandledSeqs("A", Billing));
        // Presented as the original events: original offsets, first attempt of the replay.
        Assert.Equal([0L, 1, 3, 4], log.Handled("A", Billing).Select(c => c.Offset));
        Assert.All(log.Handled("A", Billing), c => Assert.Equal(FailureHost.Topic, c.Topic));
        Assert.All(log.Handled("A", Billing), c => Assert.Equal(1, c.Attempt));
        Assert.Empty(await host.ListAsync(Billing));

        // The key is no longer parked: new events flow, after the replayed ones.
        await host.PublishAsync("A", 4);
        await host.PublishAsync("A", 5);
        await Eventually.WaitAsync(() => log.Handled("A", Billing).Count == 6, what: () => "A4 and A5 handled by billing");
        Assert.Equal([0, 1, 2, 3, 4, 5], log.HandledSeqs("A", Billing));
        Assert.Empty(await host.ListAsync(Billing));

        // The other group saw each event exactly once: the replay went to billing only.
        await Eventually.WaitAsync(() => log.Handled("A", Audit).Count >= 6, what: () => "audit handled A4 and A5");
        await Eventually.QuietPeriod();
        Assert.Equal([0, 1, 2, 3, 4, 5], log.HandledSeqs("A", Audit));
        Assert.Equal([0], log.HandledSeqs("B", Audit));
        Assert.Equal([0], log.HandledSeqs("B", Billing));
    }

    [Fact]
    public async Task Replaying_to_the_original_topic_gives_every_group_the_event_again()
    {
        using var dir = new TempDirectory("replay");
        var log = new CallLog();
        var outage = new Outage();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => outage.On && e.Account == "A")),
            (Audit, Fast.Retry(0), Fast.NoFailures(log)));
        await host.PublishAsync("A", 0, id: "evt-1");
        var letter = Assert.Single(await host.WaitForDeadLettersAsync(Billing, 1));
        await Eventually.WaitAsync(() => log.Handled("A", Audit).Count == 1, what: () => "audit handled A0");

        outage.End();
        Assert.Equal(1, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.One(letter.Id), ReplayTarget.OriginalTopic));
        await Eventually.WaitAsync(() => log.Handled("A", Billing).Count == 1 && log.Handled("A", Audit).Count == 2,
            what: () => $"both groups handled the republished A0 (billing {log.Handled("A", Billing).Count}, audit {log.Handled("A", Audit).Count})");
        await Eventually.QuietPeriod();

        // A new event on the topic (at offset 1), with the event's own id.
        Assert.Equal(2, host.EndOffset(FailureHost.Topic));
        var billing = Assert.Single(log.Handled("A", Billing));
        Assert.Equal((1L, "evt-1"), (billing.Offset, billing.EventId));
        Assert.Equal([(0L, "evt-1"), (1L, "evt-1")], log.Handled("A", Audit).Select(c => (c.Offset, c.EventId)));
        Assert.Empty(await host.ListAsync(Billing));
    }

    [Fact]
    public async Task Discarding_a_parked_key_resumes_it_and_its_discarded_events_are_never_handled()
    {
        using var dir = new TempDirectory("discard");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e is { Account: "A", Seq: 0 })));
        await host.PublishAllAsync([("A", 0), ("A", 1), ("A", 2)]);
        await host.WaitForDeadLettersAsync(Billing, 3);

        Assert.Equal(3, await host.DeadLetters.DiscardAsync(FailureHost.Topic, Billing, DeadLetterSelection.Key("A")));
        Assert.Empty(await host.ListAsync(Billing));
        await host.PublishAsync("A", 3);
        await Eventually.WaitAsync(() => log.Handled("A").Count == 1, what: () => "A3 handled");
        await Eventually.QuietPeriod();
        Assert.Equal([3], log.HandledSeqs("A"));
        Assert.Equal([0, 3], log.Of("A").Select(c => c.Seq)); // A1 and A2 never reached the handler
        Assert.Empty(await host.ListAsync(Billing));
        // Discarding again finds nothing.
        Assert.Equal(0, await host.DeadLetters.DiscardAsync(FailureHost.Topic, Billing, DeadLetterSelection.Key("A")));
    }

    [Fact]
    public async Task Replaying_one_dead_letter_by_id_replays_only_it_and_the_key_resumes_once_none_is_left()
    {
        using var dir = new TempDirectory("replay-one");
        var log = new CallLog();
        var outage = new Outage();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => outage.On && e is { Account: "A", Seq: 0 })));
        await host.PublishAllAsync([("A", 0), ("A", 1), ("A", 2)]);
        var letters = await host.WaitForDeadLettersAsync(Billing, 3);
        outage.End();

        Assert.Equal(1, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.One(letters[0].Id)));
        await Eventually.WaitAsync(() => log.Handled("A").Count == 1, what: () => "A0 handled");
        var left = await host.ListAsync(Billing);
        Assert.Equal([letters[1].Id, letters[2].Id], left.Select(l => l.Id));

        // Dead letters of the key are left, so it is still parked: a new event follows them.
        await host.PublishAsync("A", 3);
        left = await host.WaitForDeadLettersAsync(Billing, 3);
        Assert.Equal(DeadLetterReason.Parked, left[^1].Reason);
        Assert.Equal([0], log.HandledSeqs("A"));

        Assert.Equal(1, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.One(letters[1].Id)));
        Assert.Equal(2, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.Key("A")));
        await Eventually.WaitAsync(() => log.Handled("A").Count == 4, what: () => $"A1..A3 handled (have {string.Join(",", log.HandledSeqs("A"))})");
        Assert.Equal([0, 1, 2, 3], log.HandledSeqs("A"));
        Assert.Empty(await host.ListAsync(Billing));
        await host.PublishAsync("A", 4);
        await Eventually.WaitAsync(() => log.Handled("A").Count == 5, what: () => "A4 handled");
    }

    [Fact]
    public async Task Replaying_a_failure_group_replays_its_dead_letters_and_the_events_parked_behind_them()
    {
        using var dir = new TempDirectory("replay-group");
        var log = new CallLog();
        var outage = new Outage();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx,
                fail: (e, _) => outage.On && e.Seq == 0,
                thrower: e => (e.Account == "k1" ? (Action<Charge>)PaymentGateway.Charge : LedgerClient.Post)(e))));
        await host.PublishAllAsync([("k1", 0), ("k2", 0), ("k1", 1)]);
        await host.WaitForDeadLettersAsync(Billing, 3);
        var groups = await host.DeadLetters.GroupByFailureAsync(FailureHost.Topic, Billing);
        var card = groups.Single(g => g.ExceptionType == typeof(CardDeclinedException).FullName);
        outage.End();

        Assert.Equal(2, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.FailureGroup(card.FailureGroup)));
        await Eventually.WaitAsync(() => log.Handled("k1").Count == 2, what: () => "k1 handled");
        Assert.Equal([0, 1], log.HandledSeqs("k1"));
        var left = Assert.Single(await host.ListAsync(Billing));
        Assert.Equal("k2", left.KeyText);
        Assert.Equal(typeof(TimeoutException).FullName, left.ExceptionType);
        Assert.Empty(log.Handled("k2"));
    }

    [Fact]
    public async Task When_a_replayed_key_fails_again_its_later_replayed_events_are_parked_again_not_handled()
    {
        using var dir = new TempDirectory("replay-again");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e is { Account: "A", Seq: 0 })));
        await host.PublishAllAsync([("A", 0), ("A", 1)]);
        await host.WaitForDeadLettersAsync(Billing, 2);

        // The cause is not fixed: A0 fails again on replay. A1 must not overtake it.
        Assert.Equal(2, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.Key("A")));
        await Eventually.WaitAsync(() => log.Of("A").Count(c => c.Seq == 0) == 2, what: () => "A0 replayed and failed again");
        await Eventually.WaitAsync(async () => (await host.ListAsync(Billing)).Count >= 1, what: () => "A0 dead-lettered again");
        await Eventually.QuietPeriod(300);
        Assert.Empty(log.Handled("A"));
        var letters = await host.ListAsync(Billing);
        Assert.Equal([(DeadLetterReason.Failed, 0L), (DeadLetterReason.Parked, 1L)], letters.Select(l => (l.Reason, l.OriginalOffset)));
    }

    [Fact]
    public async Task A_replayed_event_that_fails_gets_its_delayed_retries_though_other_dead_letters_of_its_key_remain()
    {
        using var dir = new TempDirectory("replay-again");
        var log = new CallLog();
        // A0 fails its first pass and its one delayed round (invocations 1-2), then the first pass
        // of its replay (3); the delayed round of the replay (4) succeeds.
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(0, 100), (c, ctx) => log.Handle(c, ctx, fail: (e, n) => e is { Account: "A", Seq: 0 } && n <= 3)));
        await host.PublishAllAsync([("A", 0), ("A", 1)]);
        var letters = await host.WaitForDeadLettersAsync(Billing, 2);

        Assert.Equal(1, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.One(letters[0].Id)));
        IReadOnlyList<DeadLetter> now = [];
        await Eventually.WaitAsync(async () =>
        {
            now = await host.ListAsync(Billing);
            return log.Handled("A").Count == 1;
        }, TimeSpan.FromSeconds(5), () => $"A0 handled on the delayed round of its replay (A calls: {log.Of("A").Count}; dead letters: {FailureHost.Describe(now)})");
        Assert.Equal([1, 2, 3, 4], log.Of("A").Select(c => c.Invocation));
        var left = Assert.Single(await host.ListAsync(Billing));
        Assert.Equal((DeadLetterReason.Parked, 1L), (left.Reason, left.OriginalOffset));
    }

    [Fact]
    public async Task A_replayed_event_that_fails_again_goes_back_to_the_dead_letters_after_a_full_set_of_retries()
    {
        using var dir = new TempDirectory("replay-again");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Billing, Fast.Retry(1, 100), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e.Account == "A")));
        await host.PublishAsync("A", 0);
        var first = Assert.Single(await host.WaitForDeadLettersAsync(Billing, 1));
        Assert.Equal(4, first.Attempts);

        Assert.Equal(1, await host.DeadLetters.ReplayAsync(FailureHost.Topic, Billing, DeadLetterSelection.Key("A")));
        await Eventually.WaitAsync(() => log.Of("A").Count == 8, what: () => $"a second full set of attempts (have {log.Of("A").Count})");
        var again = Assert.Single(await host.WaitForDeadLettersAsync(Billing, 1));
        Assert.NotEqual(first.Id, again.Id);
        Assert.Equal(DeadLetterReason.Failed, again.Reason);
        Assert.Equal(first.OriginalOffset, again.OriginalOffset);
        Assert.Equal(4, again.Attempts); // the replay starts counting afresh
        Assert.Equal([1, 2, 3, 4, 1, 2, 3, 4], log.Of("A").Select(c => c.Attempt));

        // Parked again: the next event of the key follows it.
        await host.PublishAsync("A", 1);
        var letters = await host.WaitForDeadLettersAsync(Billing, 2);
        Assert.Equal(DeadLetterReason.Parked, letters[1].Reason);
        Assert.Equal(first.OriginalOffset, letters[1].ParkedBehind);
        Assert.All(log.Of("A"), c => Assert.Equal(0, c.Seq));
    }
}
