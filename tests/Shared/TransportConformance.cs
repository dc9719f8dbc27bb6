using System.Collections.Concurrent;
using Herald.DeadLetters;
using Herald.Subscriptions;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Testing;

public sealed record ConformanceEvent(string Key, int Seq);

/// <summary>One of the broker's processes: hosts created by <see cref="ConformanceBroker.StartAsync"/>
/// share the broker as a service's processes do.</summary>
public abstract class ConformanceBroker : IAsyncDisposable
{
    /// <summary>Puts this broker's transport on a host's Herald.</summary>
    protected abstract void UseTransport(HeraldBuilder herald);

    /// <summary>How long a group takes at most to hand a member that left without a word's
    /// partitions to the others (a session timeout).</summary>
    public abstract TimeSpan RebalanceWithin { get; }

    public async Task<IHost> StartAsync(Action<HeraldBuilder> configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (Environment.GetEnvironmentVariable("HERALD_TEST_LOG") == "1") builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddHerald(h =>
        {
            UseTransport(h);
            configure(h);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    public abstract ValueTask DisposeAsync();
}

/// <summary>
/// What every transport must do under Herald's pipeline, written once and run against each
/// transport by deriving from this class (a linked source file in each transport's test project):
/// publish and consume, group semantics, fan-out, resume from committed offsets, order per key
/// under concurrency, retries and dead letters, replay, backpressure, rebalancing with members
/// joining and leaving mid-stream, and draining on shutdown. Counts are small and waits are
/// conditions with deadlines: a transport may be slow (librdkafka's mock cluster), not wrong.
/// </summary>
public abstract class TransportConformance
{
    /// <summary>A fresh broker for one test (its own directory, or its own topic names on a shared cluster).</summary>
    protected abstract ConformanceBroker OpenBroker();

    /// <summary>How long a condition may take before the test fails.</summary>
    protected virtual TimeSpan Patience => TimeSpan.FromSeconds(60);

    protected static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)];

    private sealed class Seen
    {
        public readonly ConcurrentQueue<(string Member, string Key, int Seq, string Id)> All = new();
        public int Count => All.Count;
    }

    private static Action<HeraldBuilder> Wiring(string topic, string group, string member, Seen seen, Func<ConformanceEvent, Task>? work = null, Action<SubscriptionOptions>? options = null) => h =>
    {
        h.Topic(topic, partitions: 4);
        h.Event<ConformanceEvent>(topic, e => e.Key);
        h.Subscribe(group, s => s
            .Handle<ConformanceEvent>(async (e, ctx, ct) =>
            {
                if (work is not null) await work(e);
                seen.All.Enqueue((member, e.Key, e.Seq, ctx.Envelope.Id));
            })
            .Configure(o =>
            {
                o.CommitInterval = TimeSpan.FromMilliseconds(50);
                options?.Invoke(o);
            }));
    };

    private async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out after {Patience} waiting for {what}");
            await Task.Delay(20);
        }
    }

    private static async Task PublishAsync(IHost host, int from, int to, int keys)
    {
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var n = from; n < to; n++) await publisher.PublishAsync(new ConformanceEvent($"k{n % keys}", n));
    }

    private static async Task StopAsync(IHost host)
    {
        try
        {
            await host.StopAsync();
        }
        finally
        {
            if (host is IAsyncDisposable a) await a.DisposeAsync();
            else host.Dispose();
        }
    }

    private static void AssertOrderPerKey(IEnumerable<(string Member, string Key, int Seq, string Id)> seen)
    {
        foreach (var key in seen.Select(s => s.Key).Distinct())
        {
            var order = seen.Where(s => s.Key == key).Select(s => s.Seq).ToList();
            Assert.Equal(order.Order(), order);
        }
    }

    [Fact]
    public async Task Published_events_are_consumed_once_each_in_order_per_key()
    {
        await using var broker = OpenBroker();
        var topic = Unique("basic");
        var group = Unique("g");
        var seen = new Seen();
        var host = await broker.StartAsync(Wiring(topic, group, "a", seen));
        try
        {
            await PublishAsync(host, 0, 40, keys: 5);
            await WaitUntilAsync(() => seen.Count >= 40, "40 events handled");
            await Task.Delay(200); // nothing more may come
        }
        finally
        {
            await StopAsync(host);
        }
        Assert.Equal(Enumerable.Range(0, 40), seen.All.Select(s => s.Seq).Order());
        Assert.Equal(40, seen.All.Select(s => s.Id).Distinct().Count());
        AssertOrderPerKey(seen.All);
    }

    [Fact]
    public async Task Members_of_one_group_share_the_events_and_every_group_gets_all_of_them()
    {
        await using var broker = OpenBroker();
        var topic = Unique("groups");
        var group = Unique("g");
        var otherGroup = Unique("o");
        var shared = new Seen();
        var other = new Seen();
        var a = await broker.StartAsync(Wiring(topic, group, "a", shared));
        var b = await broker.StartAsync(Wiring(topic, group, "b", shared));
        var c = await broker.StartAsync(Wiring(topic, otherGroup, "c", other));
        var published = 0;
        try
        {
            // Until both members of "shared" have handled something (the second may still be
            // joining when the first events go out), then as many again.
            while (!(shared.All.Any(x => x.Member == "a") && shared.All.Any(x => x.Member == "b")))
            {
                if (published >= 400) throw new TimeoutException($"the second member of the group never got a share of 400 events (handled: {string.Join(", ", shared.All.GroupBy(x => x.Member).Select(g => $"{g.Key} {g.Count()}"))})");
                await PublishAsync(a, published, published + 20, keys: 12);
                published += 20;
                await WaitUntilAsync(() => shared.Count >= published, $"{published} events handled by the shared group");
            }
            await PublishAsync(b, published, published + 40, keys: 12);
            published += 40;
            await WaitUntilAsync(() => shared.Count >= published && other.Count >= published, $"{published} events handled by each group");
            await Task.Delay(200);
        }
        finally
        {
            await StopAsync(c);
            await StopAsync(b);
            await StopAsync(a);
        }
        Assert.Equal(Enumerable.Range(0, published), shared.All.Select(s => s.Seq).Order()); // each once within the group
        Assert.Equal(Enumerable.Range(0, published), other.All.Select(s => s.Seq).Order()); // and again in the other group
        AssertOrderPerKey(shared.All);
        AssertOrderPerKey(other.All);
    }

    [Fact]
    public async Task A_group_resumes_from_its_committed_offsets()
    {
        await using var broker = OpenBroker();
        var topic = Unique("resume");
        var group = Unique("g");
        var first = new Seen();
        var host = await broker.StartAsync(Wiring(topic, group, "a", first));
        try
        {
            await PublishAsync(host, 0, 20, keys: 4);
            await WaitUntilAsync(() => first.Count >= 20, "the first 20 handled");
        }
        finally
        {
            await StopAsync(host); // commits what finished
        }
        var second = new Seen();
        host = await broker.StartAsync(Wiring(topic, group, "b", second));
        try
        {
            await PublishAsync(host, 20, 30, keys: 4);
            await WaitUntilAsync(() => second.Count >= 10, "the next 10 handled");
            await Task.Delay(200);
        }
        finally
        {
            await StopAsync(host);
        }
        Assert.Equal(Enumerable.Range(20, 10), second.All.Select(s => s.Seq).Order());
    }

    [Fact]
    public async Task Order_per_key_holds_while_many_keys_are_handled_at_once()
    {
        await using var broker = OpenBroker();
        var topic = Unique("order");
        var group = Unique("g");
        var seen = new Seen();
        var inFlight = 0;
        var most = 0;
        var host = await broker.StartAsync(Wiring(topic, group, "a", seen, async e =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref most, now);
            await Task.Delay(Random.Shared.Next(0, 4));
            Interlocked.Decrement(ref inFlight);
        }, o => o.MaxInFlight = 16));
        try
        {
            await PublishAsync(host, 0, 120, keys: 8);
            await WaitUntilAsync(() => seen.Count >= 120, "120 events handled");
        }
        finally
        {
            await StopAsync(host);
        }
        Assert.Equal(120, seen.Count);
        AssertOrderPerKey(seen.All);
        Assert.True(most > 1, $"keys were handled one at a time (at most {most} at once)");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var was = Interlocked.CompareExchange(ref target, value, seen);
            if (was == seen) return;
            seen = was;
        }
    }

    [Fact]
    public async Task A_bounded_number_of_handlers_run_at_once_however_many_events_wait()
    {
        await using var broker = OpenBroker();
        var topic = Unique("bounded");
        var group = Unique("g");
        var seen = new Seen();
        var inFlight = 0;
        var most = 0;
        var host = await broker.StartAsync(Wiring(topic, group, "a", seen, async e =>
        {
            InterlockedMax(ref most, Interlocked.Increment(ref inFlight));
            await Task.Delay(5);
            Interlocked.Decrement(ref inFlight);
        }, o =>
        {
            o.MaxInFlight = 3;
            o.PrefetchRecords = 10;
        }));
        try
        {
            await PublishAsync(host, 0, 60, keys: 30);
            await WaitUntilAsync(() => seen.Count >= 60, "60 events handled");
        }
        finally
        {
            await StopAsync(host);
        }
        Assert.InRange(most, 1, 3);
    }

    [Fact]
    public async Task A_failing_event_is_retried_dead_lettered_and_replayed_without_holding_up_other_keys()
    {
        await using var broker = OpenBroker();
        var topic = Unique("failing");
        var group = Unique("g");
        var seen = new Seen();
        var broken = 1; // the handler fails for key "poison" until fixed
        var attempts = 0;
        var host = await broker.StartAsync(Wiring(topic, group, "a", seen, e =>
        {
            if (e.Key != "poison") return Task.CompletedTask;
            Interlocked.Increment(ref attempts);
            return Volatile.Read(ref broken) == 1 ? throw new FormatException($"event {e.Seq} is malformed") : Task.CompletedTask;
        }, o =>
        {
            o.Retry.ImmediateRetries = 1;
            o.Retry.Backoff = TimeSpan.FromMilliseconds(5);
            o.Retry.Delayed = [TimeSpan.FromMilliseconds(100)];
            o.DeadLetterMode = DeadLetterMode.Skip;
        }));
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new ConformanceEvent("poison", 0));
            await PublishAsync(host, 1, 11, keys: 5);
            var dlq = host.Services.GetRequiredService<DeadLetterQueue>();
            IReadOnlyList<DeadLetter> letters = [];
            await WaitUntilAsync(() => seen.Count >= 10 && (letters = dlq.ListAsync(topic, group).Result).Count >= 1, "10 handled and 1 dead letter");
            var letter = Assert.Single(letters);
            Assert.Equal("System.FormatException", letter.ExceptionType);
            Assert.Equal(4, Volatile.Read(ref attempts)); // 1 + 1 at once, then 1 + 1 in the delayed round
            Assert.DoesNotContain(seen.All, s => s.Key == "poison");

            Volatile.Write(ref broken, 0);
            Assert.Equal(1, await dlq.ReplayAsync(topic, group, DeadLetterSelection.One(letter.Id)));
            await WaitUntilAsync(() => seen.All.Any(s => s.Key == "poison"), "the replayed event handled");
            await WaitUntilAsync(() => dlq.ListAsync(topic, group).Result.Count == 0, "the dead letter resolved");
        }
        finally
        {
            await StopAsync(host);
        }
        Assert.Single(seen.All, s => s.Key == "poison");
    }

    [Fact]
    public async Task Members_joining_and_leaving_mid_stream_lose_no_event_and_handle_none_that_finished_twice()
    {
        await using var broker = OpenBroker();
        var topic = Unique("rebalance");
        var group = Unique("g");
        var seen = new Seen();
        Func<ConformanceEvent, Task> slow = _ => Task.Delay(10);
        var source = await broker.StartAsync(h =>
        {
            h.Topic(topic, partitions: 4);
            h.Event<ConformanceEvent>(topic, e => e.Key);
        });
        var a = await broker.StartAsync(Wiring(topic, group, "a", seen, slow));
        IHost? b = null;
        // A steady stream for as long as the members take to join and leave (a group's rebalance
        // may take seconds), so both happen mid-stream.
        using var stopPublishing = new CancellationTokenSource();
        var published = 0;
        var publisher = source.Services.GetRequiredService<IEventPublisher>();
        var publishing = Task.Run(async () =>
        {
            while (!stopPublishing.IsCancellationRequested && published < 5000)
            {
                await publisher.PublishAsync(new ConformanceEvent($"k{published % 16}", published));
                Interlocked.Increment(ref published);
                await Task.Delay(10);
            }
        });
        try
        {
            await WaitUntilAsync(() => seen.Count >= 20, "the first events handled by the first member");
            b = await broker.StartAsync(Wiring(topic, group, "b", seen, slow)); // joins mid-stream
            await WaitUntilAsync(() => seen.All.Any(s => s.Member == "b"), "the second member handling its share");
            var before = seen.All.Count(s => s.Member == "b");
            await StopAsync(a); // leaves mid-stream: its partitions move to b
            a = null;
            await WaitUntilAsync(() => seen.All.Count(s => s.Member == "b") >= before + 40, "the second member handling the stream alone");
            await stopPublishing.CancelAsync();
            await publishing;
            await WaitUntilAsync(() => seen.All.Select(s => s.Seq).Distinct().Count() >= published, $"all {published} handled");
            await Task.Delay(300);
        }
        finally
        {
            await stopPublishing.CancelAsync();
            await publishing;
            if (a is not null) await StopAsync(a);
            if (b is not null) await StopAsync(b);
            await StopAsync(source);
        }
        Assert.Equal(Enumerable.Range(0, published), seen.All.Select(s => s.Seq).Distinct().Order());
        var twice = seen.All.GroupBy(s => s.Seq).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"finished events handled again after a rebalance: {string.Join(", ", twice)}");
    }

    [Fact]
    public async Task Partitions_taken_away_go_after_the_revoke_timeout_even_if_their_handlers_hang_and_their_records_come_again()
    {
        await using var broker = OpenBroker();
        var topic = Unique("revoke");
        var group = Unique("g");
        var seen = new Seen();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = 0;
        var a = await broker.StartAsync(Wiring(topic, group, "a", seen, async _ =>
        {
            Interlocked.Increment(ref started);
            await gate.Task; // hangs until let go, whatever is cancelled
        }, o =>
        {
            o.MaxInFlight = 16;
            o.RevokeTimeout = TimeSpan.FromMilliseconds(300);
        }));
        IHost? b = null;
        try
        {
            await PublishAsync(a, 0, 16, keys: 16);
            await WaitUntilAsync(() => Volatile.Read(ref started) >= 16, "16 handlers hanging on the first member");
            // (A host's start waits for its first assignment: bounded here, so that a revoke that
            // never ends fails the test rather than hanging it.)
            b = await broker.StartAsync(Wiring(topic, group, "b", seen)).WaitAsync(Patience);
            // The second member gets partitions whose handlers still hang on the first: they come
            // to it after the revoke timeout, not after the handlers.
            await WaitUntilAsync(() => seen.All.Any(s => s.Member == "b"), "the second member handling records the first one never finished");
            Assert.False(gate.Task.IsCompleted);
            Assert.DoesNotContain(seen.All, s => s.Member == "a");
            gate.SetResult();
            await WaitUntilAsync(() => seen.All.Select(s => s.Seq).Distinct().Count() >= 16, "every event finished by one member or the other");
        }
        finally
        {
            gate.TrySetResult();
            await StopAsync(a);
            if (b is not null) await StopAsync(b);
        }
        Assert.Equal(Enumerable.Range(0, 16), seen.All.Select(s => s.Seq).Distinct().Order());
    }

    [Fact]
    public async Task Stopping_finishes_the_handlers_in_flight_and_commits_them()
    {
        await using var broker = OpenBroker();
        var topic = Unique("drain");
        var group = Unique("g");
        var seen = new Seen();
        var started = 0;
        var host = await broker.StartAsync(Wiring(topic, group, "a", seen, async e =>
        {
            Interlocked.Increment(ref started);
            await Task.Delay(300); // ignores cancellation: it has to be let finish
        }, o => o.MaxInFlight = 4));
        try
        {
            await PublishAsync(host, 0, 8, keys: 8);
            await WaitUntilAsync(() => Volatile.Read(ref started) >= 4, "four handlers running");
        }
        finally
        {
            await StopAsync(host); // waits for them (within the drain timeout) and commits them
        }
        var finished = seen.All.Select(s => s.Seq).ToHashSet();
        Assert.True(finished.Count >= 4, $"only {finished.Count} of the running handlers were let finish");

        var again = new Seen();
        host = await broker.StartAsync(Wiring(topic, group, "b", again));
        try
        {
            await WaitUntilAsync(() => finished.Count + again.Count >= 8, "the rest handled after the restart");
            await Task.Delay(200);
        }
        finally
        {
            await StopAsync(host);
        }
        Assert.Empty(again.All.Select(s => s.Seq).Intersect(finished)); // nothing finished came again
        Assert.Equal(Enumerable.Range(0, 8), finished.Concat(again.All.Select(s => s.Seq)).Order());
    }
}
