using Herald.DeadLetters;

namespace Herald.Tests.Failures;

/// <summary>Parked keys and delayed retries survive a restart: their state is rebuilt from the
/// dead-letter and retry topics.</summary>
public class RestartTests
{
    private const string Group = "billing";
    private static readonly string RetryTopic = $"{FailureHost.Topic}.{Group}.retry";

    private sealed class Outage
    {
        private volatile bool _on = true;
        public bool On => _on;
        public void End() => _on = false;
    }

    [Fact]
    public async Task A_parked_key_is_still_parked_after_a_restart_until_it_is_replayed()
    {
        using var dir = new TempDirectory("restart-park");
        var log = new CallLog();
        var outage = new Outage();
        Task<FailureHost> Start() => FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(0), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => outage.On && e is { Account: "A", Seq: 0 })));

        await using (var first = await Start())
        {
            await first.PublishAllAsync([("A", 0), ("A", 1)]);
            await first.WaitForDeadLettersAsync(Group, 2);
        }

        await using var second = await Start();
        await second.PublishAllAsync([("A", 2), ("B", 0)]);
        await Eventually.WaitAsync(() => log.Handled("B").Count == 1, what: () => "B0 handled after the restart");
        var letters = await second.WaitForDeadLettersAsync(Group, 3);
        Assert.Equal([DeadLetterReason.Failed, DeadLetterReason.Parked, DeadLetterReason.Parked], letters.Select(l => l.Reason));
        Assert.Equal([0L, 1, 2], letters.Select(l => l.OriginalOffset));
        Assert.Equal(0, letters[2].ParkedBehind);
        Assert.Equal(letters[0].FailureGroup, letters[2].FailureGroup);
        Assert.Empty(log.Handled("A"));
        Assert.Single(log.Of("A")); // A0's one failed attempt, before the restart: nothing ran again

        outage.End();
        Assert.Equal(3, await second.DeadLetters.ReplayAsync(FailureHost.Topic, Group, DeadLetterSelection.Key("A")));
        await Eventually.WaitAsync(() => log.Handled("A").Count == 3, what: () => $"A handled after the replay (have {string.Join(",", log.HandledSeqs("A"))})");
        Assert.Equal([0, 1, 2], log.HandledSeqs("A"));
        Assert.Empty(await second.ListAsync(Group));
    }

    [Fact]
    public async Task A_delayed_retry_waiting_at_shutdown_runs_after_its_due_time_and_in_order_after_a_restart()
    {
        using var dir = new TempDirectory("restart-retry");
        var log = new CallLog();
        const int delayMs = 2_000;
        Task<FailureHost> Start() => FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(0, delayMs), (c, ctx) => log.Handle(c, ctx, fail: (e, n) => e is { Account: "A", Seq: 0 } && n == 1)));

        long dueMs;
        // Both in the log before the group starts: fetched together, so A1 meets A0 still running
        // and follows it into the retry topic (see DelayedRetryTests.A_later_event_of_a_key_whose_retry_already_waits...).
        await FailureHost.PublishBeforeConsumingAsync(dir.Path, ("A", 0), ("A", 1));
        await using (var first = await Start())
        {
            // A0 failed and waits for its round; A1 followed it into the retry topic.
            await Eventually.WaitAsync(() => first.EndOffset(RetryTopic) == 2, what: () =>
                $"A0 and A1 in the retry topic (its end: {first.EndOffset(RetryTopic)}; dlq end: {first.EndOffset($"{FailureHost.Topic}.{Group}.dlq")}; calls: {log})");
            var retries = await first.ReadAsync(RetryTopic);
            dueMs = long.Parse(RetryTests.Header(retries[0].Headers, HeaderNames.DueMs)!);
            Assert.Null(RetryTests.Header(retries[1].Headers, HeaderNames.DueMs)); // A1 waits only for A0
        }
        Assert.True(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() < dueMs, "the host took longer to stop than the retry delay: the test proves nothing");
        Assert.Empty(log.Handled("A"));

        await using var second = await Start();
        await second.PublishAllAsync([("A", 2), ("B", 0)]);
        await Eventually.WaitAsync(() => log.Handled("B").Count == 1, what: () => "B0 handled");
        await Eventually.WaitAsync(() => log.Handled("A").Count == 3, timeout: TimeSpan.FromSeconds(20),
            what: () => $"A handled after the restart (have {string.Join(",", log.HandledSeqs("A"))})");

        var b0 = log.Handled("B").Single();
        Assert.True(b0.WallMs < dueMs, "B0 waited for A's retry");
        var a = log.Handled("A");
        Assert.Equal([0, 1, 2], a.Select(c => c.Seq));
        Assert.True(a[0].WallMs >= dueMs - Clock.TimerSlackMs, $"A0 ran {dueMs - a[0].WallMs} ms before it was due");
        Assert.Equal(2, a[0].Attempt); // the attempt before the restart counts
        Assert.Equal([1, 1], a.Skip(1).Select(c => c.Attempt));
        Assert.Equal([2, 1, 1], a.Select(c => c.Invocation)); // each ran once after the restart
        await Eventually.QuietPeriod();
        Assert.Equal(4, log.Of("A").Count);
        Assert.Empty(await second.ListAsync(Group));
    }

    [Fact]
    public async Task After_a_restart_a_key_never_sees_an_earlier_event_again_once_a_later_one_was_handled()
    {
        using var dir = new TempDirectory("restart-order");
        var log = new CallLog();
        // C0 and A0 each fail their first pass and their first delayed round (invocations 1-2);
        // after the restart everything succeeds.
        Task<FailureHost> Start() => FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(0, 100, 2_500), (c, ctx) => log.Handle(c, ctx, fail: (e, n) => e.Seq == 0 && n <= 2)));

        // C0 ends up waiting for its second round at the head of the retry topic: nothing after it
        // there is committed at shutdown.
        await using (var first = await Start())
        {
            await first.PublishAsync("C", 0);
            await Eventually.WaitAsync(() => first.EndOffset(RetryTopic) == 2, what: () => $"C0 in its second round ({log})");
        }
        // Meanwhile A0 goes through its first round and back to the end of the retry topic for its
        // second, A1 following it each time (published before the group starts again, so that A1
        // is fetched with A0).
        await FailureHost.PublishBeforeConsumingAsync(dir.Path, ("A", 0), ("A", 1));
        await using (var again = await Start())
        {
            await Eventually.WaitAsync(() => again.EndOffset(RetryTopic) == 6, what: () => $"A0 and A1 behind A0's second round (retry topic end {again.EndOffset(RetryTopic)}; calls: {log})");
            var c0 = (await again.ReadAsync(RetryTopic))[1];
            Assert.True(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() < long.Parse(RetryTests.Header(c0.Headers, HeaderNames.DueMs)!),
                "C0's second round came due before the restart: the test proves nothing");
        }
        Assert.Empty(log.Handled("A"));

        await using var second = await Start();
        var retries = await second.ReadAsync(RetryTopic);
        var lastDue = retries.Max(r => long.Parse(RetryTests.Header(r.Headers, HeaderNames.DueMs) ?? "0"));
        await Eventually.WaitAsync(() => log.Handled("A").Count >= 2 && log.Handled("C").Count >= 1, what: () => "A and C handled after the restart");
        // Past every due time, and a little more: whatever the restart brings back has run.
        await Eventually.WaitAsync(() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() > lastDue + 300, TimeSpan.FromSeconds(10));

        var seqs = log.HandledSeqs("A");
        Assert.True(seqs.SequenceEqual(seqs.Order()), $"A's events were handled in the order {string.Join(", ", seqs)}");
    }

    [Fact]
    public async Task A_retry_that_fails_after_a_restart_is_dead_lettered_with_every_attempt_counted_and_its_key_parked()
    {
        using var dir = new TempDirectory("restart-retry");
        var log = new CallLog();
        Task<FailureHost> Start() => FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(1, 1_000), (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e is { Account: "A", Seq: 0 })));

        await FailureHost.PublishBeforeConsumingAsync(dir.Path, ("A", 0), ("A", 1));
        await using (var first = await Start())
        {
            await Eventually.WaitAsync(() => first.EndOffset(RetryTopic) == 2, what: () =>
                $"A0 and A1 in the retry topic (its end: {first.EndOffset(RetryTopic)}; dlq end: {first.EndOffset($"{FailureHost.Topic}.{Group}.dlq")}; calls: {log})");
        }

        await using var second = await Start();
        await second.PublishAsync("A", 2);
        var letters = await second.WaitForDeadLettersAsync(Group, 3);
        Assert.Equal([DeadLetterReason.Failed, DeadLetterReason.Parked, DeadLetterReason.Parked], letters.Select(l => l.Reason));
        Assert.Equal([0L, 1, 2], letters.Select(l => l.OriginalOffset));
        Assert.Equal(4, letters[0].Attempts); // 2 before the restart, 2 after
        Assert.Equal([1, 2, 3, 4], log.Of("A").Select(c => c.Attempt));
        Assert.NotNull(letters[0].FirstFailure);
        Assert.NotNull(letters[0].LastFailure);
        var firstCall = log.Of("A")[0];
        // The first failure is the one before the restart.
        Assert.InRange(letters[0].FirstFailure!.Value.ToUnixTimeMilliseconds(), firstCall.WallMs, log.Of("A")[1].WallMs);
        Assert.True(letters[0].LastFailure!.Value - letters[0].FirstFailure!.Value >= TimeSpan.FromMilliseconds(1_000 - Clock.TimerSlackMs),
            $"first failure {letters[0].FirstFailure:O}, last {letters[0].LastFailure:O}: not a delayed round apart");
        Assert.Empty(log.Handled("A"));
    }
}
