using Herald.DeadLetters;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Failures;

/// <summary>Delayed retries through the retry topic: due times, rounds, attempt counts, and the
/// order of a key's events through them.</summary>
public class DelayedRetryTests
{
    private const string Group = "billing";
    private static readonly string RetryTopic = $"{FailureHost.Topic}.{Group}.retry";

    private const int TimerTolerance = Clock.TimerSlackMs;

    [Fact]
    public async Task Every_delayed_round_runs_after_its_due_time_and_then_the_event_is_dead_lettered()
    {
        using var dir = new TempDirectory("delayed");
        var log = new CallLog();
        int[] delays = [150, 300];
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(1, delays), (c, ctx) => log.Handle(c, ctx, fail: (_, _) => true)));
        await host.PublishAsync("acct", 0);

        var letter = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        await Eventually.QuietPeriod();
        var calls = log.Of("acct");
        // (1 + 1 immediate retry) in the first pass and in each of the 2 rounds.
        Assert.Equal([1, 2, 3, 4, 5, 6], calls.Select(c => c.Attempt));
        Assert.Equal(6, letter.Attempts);
        Assert.Equal(DeadLetterReason.Failed, letter.Reason);
        // Round r starts with attempt 2r+1: not before the due time its retry-topic record carries,
        // and at least delays[r-1] after the failure before it, give or take the timer's coarse
        // clock (A_retry_woken_before_its_due_time_waits_until_it_is_due pins the exact rule).
        var retries = await host.ReadAsync(RetryTopic);
        Assert.Equal(delays.Length, retries.Count);
        for (var round = 1; round <= delays.Length; round++)
        {
            var before = calls[(2 * round) - 1];
            var first = calls[2 * round];
            var due = long.Parse(RetryTests.Header(retries[round - 1].Headers, HeaderNames.DueMs)!);
            Assert.Equal(round.ToString(), RetryTests.Header(retries[round - 1].Headers, HeaderNames.Round));
            Assert.InRange(due - before.WallMs, delays[round - 1], delays[round - 1] + 1_000);
            Assert.True(first.WallMs >= due - TimerTolerance, $"round {round} ran {due - first.WallMs} ms before its due time");
            var gap = first.WallMs - before.WallMs;
            Assert.True(gap >= delays[round - 1] - TimerTolerance, $"round {round} ran {gap} ms after the failure, before its delay ({delays[round - 1]} ms) was over");
            Assert.True(gap < delays[round - 1] + 3_000, $"round {round} ran {gap} ms after the failure, long after its due time ({delays[round - 1]} ms)");
            // The immediate retry inside a round is not delayed by the round's delay.
            Assert.True(calls[(2 * round) + 1].MsSince(first) < delays[0], "the immediate retry within a round waited a delayed-retry delay");
        }
        // A retried event is presented with its original topic and offset.
        Assert.All(calls, c => Assert.Equal((FailureHost.Topic, 0L), (c.Topic, c.Offset)));
        Assert.Single(calls.Select(c => c.EventId).Distinct());
    }

    /// <summary>The system clock, with one-shot timers that fire <paramref name="early"/> before
    /// they are due: what a timer on a coarse monotonic clock does, by a few ms, relative to the
    /// wall clock that due times are written in (and what a wall clock stepped back does by more).</summary>
    private sealed class EarlyTimers(TimeSpan early) : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            System.CreateTimer(callback, state, period == Timeout.InfiniteTimeSpan && dueTime > early ? dueTime - early : dueTime, period);
    }

    [Fact]
    public async Task A_retry_woken_before_its_due_time_waits_until_it_is_due()
    {
        using var dir = new TempDirectory("delayed");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path,
            FailureHost.Wiring(1, (Group, Fast.Retry(0, 400), (c, ctx) => log.Handle(c, ctx, fail: (_, n) => n == 1))),
            services => services.AddSingleton<TimeProvider>(new EarlyTimers(TimeSpan.FromMilliseconds(250))));
        await host.PublishAsync("acct", 0);

        await Eventually.WaitAsync(() => log.Handled("acct").Count == 1, what: () => "the retry handled");
        var due = long.Parse(RetryTests.Header((await host.ReadAsync(RetryTopic)).Single().Headers, HeaderNames.DueMs)!);
        var retry = log.Handled("acct").Single();
        Assert.True(retry.WallMs >= due, $"the retry ran {due - retry.WallMs} ms before its due time");
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(2, 2)]
    [InlineData(1, 3)]
    public async Task Total_attempts_are_immediate_retries_plus_one_times_one_plus_the_delayed_rounds(int immediate, int rounds)
    {
        using var dir = new TempDirectory("delayed");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(immediate, [.. Enumerable.Repeat(100, rounds)]), (c, ctx) => log.Handle(c, ctx, fail: (_, _) => true)));
        await host.PublishAsync("acct", 0);

        var letter = Assert.Single(await host.WaitForDeadLettersAsync(Group, 1));
        await Eventually.QuietPeriod();
        var expected = (immediate + 1) * (1 + rounds);
        Assert.Equal(expected, letter.Attempts);
        Assert.Equal(Enumerable.Range(1, expected), log.Of("acct").Select(c => c.Attempt));
        // One retry-topic record per round.
        Assert.Equal(rounds, host.EndOffset(RetryTopic));
    }

    [Fact]
    public async Task An_event_that_succeeds_on_a_later_round_is_handled_once_and_never_dead_lettered()
    {
        using var dir = new TempDirectory("delayed");
        var log = new CallLog();
        // Attempts 1-2 (first pass) and 3-4 (round 1) fail; attempt 5, the first of round 2, succeeds.
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(1, 100, 100, 100), (c, ctx) => log.Handle(c, ctx, fail: (_, n) => n <= 4)));
        await host.PublishAsync("acct", 0);

        await Eventually.WaitAsync(() => log.Handled("acct").Count == 1, what: () => $"the event handled ({log.Of("acct").Count} attempts)");
        await Eventually.QuietPeriod(250); // longer than a round: no further attempt comes
        var calls = log.Of("acct");
        Assert.Equal([1, 2, 3, 4, 5], calls.Select(c => c.Attempt));
        Assert.Equal([false, false, false, false, true], calls.Select(c => c.Succeeded));
        Assert.Equal(0, host.EndOffset($"{FailureHost.Topic}.{Group}.dlq"));
        Assert.Empty(await host.ListAsync(Group));
        Assert.Equal(2, host.EndOffset(RetryTopic));
    }

    [Theory]
    [InlineData(3)] // succeeds on the second attempt of round 1
    [InlineData(4)] // fails round 1 too: goes back to the end of the retry topic, the key's later events follow it
    public async Task Later_events_of_a_retrying_key_wait_behind_it_in_order_while_other_keys_go_on(int failures)
    {
        using var dir = new TempDirectory("order");
        var log = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, Fast.Retry(1, 300, 300), (c, ctx) => log.Handle(c, ctx, fail: (e, n) => e is { Account: "A", Seq: 0 } && n <= failures)));
        var events = new List<(string, int)> { ("A", 0) };
        for (var i = 0; i < 10; i++)
        {
            if (i < 4) events.Add(("A", i + 1));
            events.Add(("B", i));
        }
        await host.PublishAllAsync(events);

        await Eventually.WaitAsync(() => log.Handled("A").Count == 5, what: () => $"A handled (have {string.Join(",", log.HandledSeqs("A"))})");
        Assert.Equal([0, 1, 2, 3, 4], log.HandledSeqs("A"));
        Assert.Equal(Enumerable.Range(0, 10), log.HandledSeqs("B"));
        var a = log.Of("A");
        var firstDelayed = a.First(c => c.Seq == 0 && c.Attempt == 3);
        // B was not held up by A: all of B was handled before A's first delayed attempt came due.
        Assert.All(log.Handled("B"), b => Assert.True(b.Ticks < firstDelayed.Ticks, $"B{b.Seq} was handled only after A's delayed retry"));
        // A's later events ran after A0 succeeded, each once, on its first attempt.
        var a0 = a.Single(c => c.Seq == 0 && c.Succeeded);
        Assert.Equal(failures + 1, a0.Invocation);
        Assert.All(a.Where(c => c.Seq > 0), c =>
        {
            Assert.True(c.Ticks > a0.Ticks, $"A{c.Seq} ran before A0 succeeded");
            Assert.Equal(1, c.Invocation);
            Assert.Equal(1, c.Attempt);
        });
        // They were presented with their original offsets, though they came through the retry topic.
        Assert.Equal(a.Where(c => c.Succeeded).Select(c => c.Offset).Order(), a.Where(c => c.Succeeded).Select(c => c.Offset));

        // Once A's backlog is through, new events of A go straight through the main topic.
        var retryEnd = host.EndOffset(RetryTopic);
        await host.PublishAsync("A", 5);
        await Eventually.WaitAsync(() => log.Handled("A").Count == 6, what: () => "A5 handled");
        Assert.Equal([0, 1, 2, 3, 4, 5], log.HandledSeqs("A"));
        Assert.Equal(retryEnd, host.EndOffset(RetryTopic));
        Assert.Empty(await host.ListAsync(Group));
    }

    [Fact]
    public async Task Per_key_order_holds_for_many_keys_failing_transiently_at_different_points()
    {
        using var dir = new TempDirectory("order-many");
        var log = new CallLog();
        const int keys = 8, perKey = 12;
        // Event (k, seq) fails its first (7k + 3seq) % 3 invocations: 0, 1 or 2, all recovered
        // within the two delayed rounds.
        static int Failures(Charge e) => ((7 * int.Parse(e.Account[1..])) + (3 * e.Seq)) % 3;
        await using var host = await FailureHost.StartAsync(dir.Path, 3,
            (Group, Fast.Retry(0, 100, 100), (c, ctx) => log.Handle(c, ctx, fail: (e, n) => n <= Failures(e))));
        var events = new List<(string, int)>();
        for (var seq = 0; seq < perKey; seq++)
            for (var k = 0; k < keys; k++) events.Add(($"k{k}", seq));
        await host.PublishAllAsync(events);

        await Eventually.WaitAsync(() => log.Count(c => c.Succeeded) == keys * perKey, TimeSpan.FromSeconds(30),
            () => $"every event handled (have {log.Count(c => c.Succeeded)} of {keys * perKey})");
        await Eventually.QuietPeriod();
        for (var k = 0; k < keys; k++)
        {
            Assert.Equal(Enumerable.Range(0, perKey), log.HandledSeqs($"k{k}"));
            Assert.All(log.Handled($"k{k}"), c => Assert.Equal(Failures(new Charge($"k{k}", c.Seq)) + 1, c.Invocation));
        }
        Assert.Equal(keys * perKey, log.Count(c => c.Succeeded));
        for (var p = 0; p < 3; p++) Assert.Equal(0, host.EndOffset($"{FailureHost.Topic}.{Group}.dlq", p));
    }

    /// <summary>The system clock, telling when a one-shot timer of at least <paramref name="atLeast"/>
    /// is made: the moment a delayed retry has been fetched and waits for its due time.</summary>
    private sealed class WatchedTimers(TimeSpan atLeast) : TimeProvider
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task RetryWaiting => _waiting.Task;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (period == Timeout.InfiniteTimeSpan && dueTime >= atLeast && dueTime <= atLeast * 2) _waiting.TrySetResult();
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }

    [Fact]
    public async Task A_later_event_of_a_key_whose_retry_already_waits_follows_it_into_the_retry_topic_and_holds_up_nothing()
    {
        using var dir = new TempDirectory("order-late");
        var log = new CallLog();
        var timers = new WatchedTimers(TimeSpan.FromMilliseconds(1_500));
        // A small prefetch: records that cannot be committed hold it, so one stuck record shows.
        var options = Fast.Retry(0, 2_000).Then(o => o.PrefetchRecords = 5);
        await using var host = await FailureHost.StartAsync(dir.Path,
            FailureHost.Wiring(1, (Group, options, (c, ctx) => log.Handle(c, ctx, fail: (e, n) => e is { Account: "A", Seq: 0 } && n == 1))),
            services => services.AddSingleton<TimeProvider>(timers));
        await host.PublishAsync("A", 0);
        await timers.RetryWaiting.WaitAsync(TimeSpan.FromSeconds(10)); // A0 is back from the retry topic, waiting for its due time

        await host.PublishAsync("A", 1);
        await host.PublishAllAsync(Enumerable.Range(0, 20).Select(i => ($"k{i}", 0)));
        await Eventually.WaitAsync(() => log.Count(c => c.Succeeded && c.Account != "A") == 20, what: () => $"the other keys handled ({log})");
        await Eventually.WaitAsync(() => log.Handled("A").Count == 2, what: () => $"A handled ({log})");

        var due = long.Parse(RetryTests.Header((await host.ReadAsync(RetryTopic))[0].Headers, HeaderNames.DueMs)!);
        var lastOther = log.All.Where(c => c.Account != "A").Max(c => c.WallMs);
        Assert.True(lastOther < due, $"the other keys were held up until A0's retry was due ({lastOther - due} ms after)");
        Assert.Equal([0, 1], log.HandledSeqs("A"));
        // A1 went behind A0 through the retry topic, as every later event of a retrying key does.
        Assert.Equal(2, host.EndOffset(RetryTopic));
    }

    [Fact]
    public async Task A_failing_key_never_blocks_other_keys()
    {
        using var dir = new TempDirectory("isolation");
        var log = new CallLog();
        var options = Fast.Retry(2, 400).Then(o => o.Retry.Backoff = TimeSpan.FromMilliseconds(5));
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, options, (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e.Account == "bad")));
        var events = new List<(string, int)>();
        for (var seq = 0; seq < 5; seq++)
        {
            events.Add(("bad", seq));
            for (var k = 0; k < 40; k++) events.Add(($"k{k}", seq));
        }
        await host.PublishAllAsync(events);

        const int others = 40 * 5;
        var badAttemptsWhenOthersDone = -1;
        await Eventually.WaitAsync(() =>
        {
            var bad = log.Of("bad").Count;
            if (log.Count(c => c.Succeeded && c.Account != "bad") < others) return false;
            badAttemptsWhenOthersDone = bad;
            return true;
        }, what: () => $"the other keys handled (have {log.Count(c => c.Succeeded)})");
        // Everything else was handled while "bad" was still in its first pass or waiting for its
        // delayed round: at most its 3 immediate attempts had run.
        Assert.InRange(badAttemptsWhenOthersDone, 1, 3);
        for (var k = 0; k < 40; k++) Assert.Equal([0, 1, 2, 3, 4], log.HandledSeqs($"k{k}"));

        var letters = await host.WaitForDeadLettersAsync(Group, 5);
        Assert.Equal([DeadLetterReason.Failed, DeadLetterReason.Parked, DeadLetterReason.Parked, DeadLetterReason.Parked, DeadLetterReason.Parked], letters.Select(l => l.Reason));
        Assert.All(letters, l => Assert.Equal("bad", l.KeyText));
        Assert.Equal(6, log.Of("bad").Count); // only bad #0 was ever attempted: 3 + 3
        Assert.All(log.Of("bad"), c => Assert.Equal(0, c.Seq));
    }
}
