using System.Collections.Concurrent;
using Herald.DeadLetters;
using Herald.Embedded;
using Herald.Hosting;
using Herald.Internal.Pipeline;
using Herald.Log;
using Herald.Tests.Failures;
using Herald.Tests.Kit;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Regression;

/// <summary>Regression tests for the defects a review of Herald core found (reproduced first with
/// scratch programs rv1..rv8): each fails on the defect it is named after.</summary>
public class ReviewRegressionTests
{
    private const string Group = "g";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static SubscriptionRunner Runner(IHost host) =>
        host.Services.GetServices<IHostedService>().OfType<HeraldHostedService>().Single().Runners[0];

    /// <summary>Keys (with a prefix) that land on one partition of <paramref name="partitions"/>.</summary>
    private static List<string> KeysOn(int partition, int partitions, int count, string prefix) =>
        [.. Enumerable.Range(0, 100_000).Select(i => prefix + i).Where(k => FailureHost.PartitionOf(k, partitions) == partition).Take(count)];

    private static void Max(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }

    private static Task<IHost> StartMemberAsync(string directory, ITransport transport, int maxInFlight, Func<Charge, EventContext, ValueTask> handler) =>
        TestHost.StartAsync(directory, h =>
        {
            h.UseTransport(_ => transport);
            FailureHost.Wiring(2, (Group, Fast.Retry(0).Then(o =>
            {
                o.MaxInFlight = maxInFlight;
                o.PrefetchRecords = 40;
            }), handler))(h);
        });

    // rv4
    [Fact]
    public async Task A_rebalance_while_the_budget_is_full_leaves_no_partition_unprocessed()
    {
        using var dir = new TempDirectory("review-rv4");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var observing = new ObservingTransport(new EmbeddedTransport(log, ownsLog: false));
        var hooked = new HookedTransport(observing);
        var handled = new ConcurrentDictionary<string, byte>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = await StartMemberAsync(dir.Path, hooked, 1, async (c, ctx) =>
        {
            await gate.Task; // A's handlers hold until the rebalance is under way: its budget stays full
            handled[c.Account] = 0;
        });
        IHost? b = null;
        try
        {
            b = await StartMemberAsync(dir.Path, hooked, 1, (c, ctx) => { handled[c.Account] = 0; return ValueTask.CompletedTask; });
            await Eventually.WaitAsync(() => observing.Members.Count(m => !m.Left) == 2 && observing.Members.All(m => m.Partitions(FailureHost.Topic).Length == 1),
                Timeout, () => "A and B own one partition each");
            var pa = observing.Members[0].Partitions(FailureHost.Topic)[0];
            var pb = 1 - pa;
            var keysA = KeysOn(pa, 2, 100, "a");
            var keysB = KeysOn(pb, 2, 20, "b");
            var runner = Runner(a);
            var publisher = a.Services.GetRequiredService<IEventPublisher>();
            await Task.WhenAll(keysA.Select(k => publisher.PublishAsync(new Charge(k, 1)).AsTask()));
            await Eventually.WaitAsync(() => runner.PrefetchedMain.Records > 30, Timeout, () => $"A's main budget out of room (have {runner.PrefetchedMain})"); // 40 less its refill slack of a quarter

            // When A is assigned B's partition, its handlers go on (the budget gets room again,
            // which wakes the fetch loop by cancelling the fetch's token) before Herald's
            // assignment callback runs: the callback then sees the fetch's token cancelled.
            var wokenDuringAssignment = false;
            var armed = 1;
            hooked.AroundAssigned = async (partitions, ct, inner) =>
            {
                if (partitions.Any(tp => tp.Topic == FailureHost.Topic) && Interlocked.Exchange(ref armed, 0) == 1)
                {
                    gate.TrySetResult();
                    try { await Task.Delay(Timeout, ct); }
                    catch (OperationCanceledException) { wokenDuringAssignment = true; }
                }
                await inner();
            };
            // B's partition has dead-letter history (one resolved entry): taking it over reads the
            // dead-letter topic, which notices a cancelled token.
            await hooked.ProduceAsync($"{FailureHost.Topic}.{Group}.dlq", pb,
                new OutgoingRecord("x"u8.ToArray(), new byte[16], [new LogHeader(HeaderNames.DeadLetterOp, "resolve"u8.ToArray())]));
            await b.StopAndDisposeAsync(); // B leaves: A takes its partition while busy
            b = null;
            await Task.WhenAll(keysB.Select(k => publisher.PublishAsync(new Charge(k, 1)).AsTask()));

            await Eventually.WaitAsync(() => keysA.Concat(keysB).All(handled.ContainsKey), Timeout,
                () => $"every event handled (missing from A's partition {keysA.Count(k => !handled.ContainsKey(k))}, from B's former partition {keysB.Count(k => !handled.ContainsKey(k))}; A owns [{string.Join(",", observing.Members[0].Partitions(FailureHost.Topic))}])");
            Assert.True(wokenDuringAssignment, "the scenario did not happen: the fetch was not woken while A's assignment callback ran");
            Assert.Equal([0, 1], observing.Members[0].Partitions(FailureHost.Topic));
        }
        finally
        {
            gate.TrySetResult();
            if (b is not null) await b.StopAndDisposeAsync();
            await a.StopAndDisposeAsync();
        }
    }

    // rv3
    [Fact]
    public async Task A_rebalance_releases_the_prefetch_budget_of_dropped_records_once()
    {
        using var dir = new TempDirectory("review-rv3");
        await using var log = EmbeddedLog.Open(dir.Path, Hosts.FastLog());
        var hooked = new HookedTransport(new EmbeddedTransport(log, ownsLog: false));
        var handled = new ConcurrentDictionary<string, byte>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = await StartMemberAsync(dir.Path, hooked, 2, async (c, ctx) =>
        {
            await gate.Task; // A's budget stays full of records until its partition is being revoked
            handled[c.Account] = 0;
        });
        IHost? b = null;
        try
        {
            var runner = Runner(a);
            var keys = Enumerable.Range(0, 100).Select(i => "k" + i).ToList();
            var publisher = a.Services.GetRequiredService<IEventPublisher>();
            await Task.WhenAll(keys.Select(k => publisher.PublishAsync(new Charge(k, 1)).AsTask()));
            await Eventually.WaitAsync(() => runner.PrefetchedMain.Records > 30, Timeout, () => $"A's main budget out of room (have {runner.PrefetchedMain})"); // 40 less its refill slack of a quarter

            // B joins: A revokes a partition whose prefetched records (unstarted) it drops. Its
            // handlers go on once the revoke has been handed to the dispatcher.
            var revoked = 0;
            var minSeen = int.MaxValue;
            hooked.AroundRevoking = async (partitions, ct, inner) =>
            {
                var pending = inner();
                if (partitions.Any(tp => tp.Topic == FailureHost.Topic)) Interlocked.Increment(ref revoked);
                gate.TrySetResult();
                await pending;
            };
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!sampling.IsCancellationRequested)
                {
                    var r = runner.PrefetchedMain.Records;
                    if (r < Volatile.Read(ref minSeen)) Volatile.Write(ref minSeen, r);
                    await Task.Delay(1);
                }
            });
            b = await StartMemberAsync(dir.Path, hooked, 2, (c, ctx) => { handled[c.Account] = 0; return ValueTask.CompletedTask; });
            await Eventually.WaitAsync(() => keys.All(handled.ContainsKey), Timeout, () => $"all 100 handled (have {handled.Count})");
            await Eventually.WaitAsync(() => runner.PrefetchedMain == (0, 0), TimeSpan.FromSeconds(3),
                () => $"A's main budget back to (0, 0) once all is handled (have {runner.PrefetchedMain})");
            await sampling.CancelAsync();
            await sampler;
            Assert.True(Volatile.Read(ref revoked) > 0, "the scenario did not happen: A revoked no partition");
            Assert.True(minSeen >= 0, $"A's main budget went negative ({minSeen} records)");
            Assert.Equal((0, 0L), runner.PrefetchedMain);
        }
        finally
        {
            gate.TrySetResult();
            if (b is not null) await b.StopAndDisposeAsync();
            await a.StopAndDisposeAsync();
        }
    }

    // rv1
    [Fact]
    public async Task A_record_behind_a_waiting_retry_runs_in_key_order_and_due_retries_respect_MaxInFlight()
    {
        using var dir = new TempDirectory("review-rv1");
        var calls = new CallLog();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int running = 0, maxRunning = 0, runningK = 0, maxRunningK = 0, slotHolders = 0;
        await using var host = await FailureHost.StartAsync(dir.Path, 1, (Group, Fast.Retry(0, 150).Then(o => o.MaxInFlight = 2), async (c, ctx) =>
        {
            Max(ref maxRunning, Interlocked.Increment(ref running));
            if (c.Account == "K") Max(ref maxRunningK, Interlocked.Increment(ref runningK));
            try
            {
                if (c.Account != "K")
                {
                    Interlocked.Increment(ref slotHolders);
                    await gate.Task; // B1 and C1 hold both slots
                }
                await calls.Handle(c, ctx, fail: (e, n) => e is { Account: "K", Seq: 1 } && n == 1);
                if (c is { Account: "K", Seq: 2 }) await Task.Delay(100); // a window for K3 to overlap
            }
            finally
            {
                if (c.Account == "K") Interlocked.Decrement(ref runningK);
                Interlocked.Decrement(ref running);
            }
        }));
        try
        {
            await host.PublishAsync("K", 1);
            await Eventually.WaitAsync(() => calls.Of("K").Count == 1, Timeout, () => "K1 failed once");
            await host.PublishAllAsync([("B", 1), ("C", 1)]);
            await Eventually.WaitAsync(() => Volatile.Read(ref slotHolders) == 2, Timeout, () => "B1 and C1 hold both slots");
            await host.PublishAsync("K", 2); // behind K1's waiting retry
            // Not waiting for a condition: K1's retry (150 ms) comes due while both slots are taken.
            await Task.Delay(300);
            await host.PublishAsync("K", 3);
            gate.TrySetResult();
            await Eventually.WaitAsync(() => calls.HandledSeqs("K").Contains(3), Timeout, () => $"K3 handled ({calls})");
        }
        finally
        {
            gate.TrySetResult();
        }
        Assert.True(maxRunning <= 2, $"{maxRunning} handlers ran at once with MaxInFlight 2 ({calls})");
        Assert.Equal(1, maxRunningK);
        Assert.Equal([1, 1, 2, 3], calls.Of("K").Select(c => c.Seq));
        Assert.Equal([1, 2, 3], calls.HandledSeqs("K"));
    }

    // rv5
    [Fact]
    public async Task A_retry_that_succeeded_does_not_run_again_after_a_graceful_restart()
    {
        using var dir = new TempDirectory("review-rv5");
        var options = Fast.Retry(0, 100, 3_600_000);
        Func<Charge, EventContext, ValueTask> Handler(CallLog calls) =>
            (c, ctx) => calls.Handle(c, ctx, fail: (e, n) => e.Account == "A" || (e is { Account: "K", Seq: 1 } && n == 1));

        var run1 = new CallLog();
        await using (var host = await FailureHost.StartAsync(dir.Path, 1, (Group, options, Handler(run1))))
        {
            await host.PublishAsync("A", 1);
            // A failed in the first delayed round too: its copy now waits an hour in the retry
            // topic, holding the retry topic's committed offset back.
            await Eventually.WaitAsync(() => run1.Of("A").Count == 2, Timeout, () => $"A1 failed twice ({run1})");
            await host.PublishAsync("K", 1);
            await Eventually.WaitAsync(() => run1.HandledSeqs("K").Contains(1), Timeout, () => $"K1 retried and applied ({run1})");
            await host.PublishAllAsync([("K", 2), ("K", 3)]);
            await Eventually.WaitAsync(() => run1.HandledSeqs("K").Contains(3), Timeout, () => $"K2, K3 applied ({run1})");
            await host.StopAsync(); // a graceful restart (a deploy)
        }
        Assert.Equal([1, 2, 3], run1.HandledSeqs("K"));

        var run2 = new CallLog();
        await using (var host = await FailureHost.StartAsync(dir.Path, 1, (Group, options, Handler(run2))))
        {
            await host.PublishAsync("K", 4); // K1's retry, if it ran again, would run before this
            await Eventually.WaitAsync(() => run2.HandledSeqs("K").Contains(4), Timeout, () => $"K4 handled after the restart ({run2})");
        }
        Assert.Equal([4], run2.Of("K").Select(c => c.Seq));
    }

    private sealed class UnitOfWork(Action disposed) : IDisposable
    {
        public void Dispose() => disposed();
    }

    // rv6
    [Fact]
    public async Task An_exception_disposing_the_handlers_scope_does_not_stall_the_record()
    {
        using var dir = new TempDirectory("review-rv6");
        var calls = new CallLog();
        var disposals = 0;
        await using var host = await FailureHost.StartAsync(dir.Path,
            FailureHost.Wiring(1, (Group, Fast.Retry(0), (c, ctx) =>
            {
                ctx.Services.GetRequiredService<UnitOfWork>();
                return calls.Handle(c, ctx);
            })),
            services => services.AddScoped(_ => new UnitOfWork(() =>
            {
                if (Interlocked.Increment(ref disposals) == 1) throw new InvalidOperationException("flush on dispose failed");
            })));
        await host.PublishAllAsync([("K", 1), ("K", 2), ("J", 1)]);
        var log = ((EmbeddedTransport)host.Transport).Log;
        await Eventually.WaitAsync(() => log.Offsets.GetCommitted(Group, FailureHost.Topic, 0) == 3, Timeout,
            () => $"all three committed (committed {log.Offsets.GetCommitted(Group, FailureHost.Topic, 0)}; handled {calls})");
        Assert.Equal([1, 2], calls.HandledSeqs("K"));
        Assert.Equal([1], calls.HandledSeqs("J"));
        Assert.True(Volatile.Read(ref disposals) >= 3, $"scopes disposed: {disposals}");
    }

    // rv7
    [Fact]
    public async Task A_failed_replay_leaves_no_pending_entry_behind()
    {
        using var dir = new TempDirectory("review-rv7");
        var transport = new HookedTransport(new EmbeddedTransport(dir.Path), disposeInner: true);
        var failNextRetryWrite = 0;
        var failedWrites = 0;
        transport.AroundProduce = (topic, produce) =>
        {
            if (topic.EndsWith(".retry", StringComparison.Ordinal) && Interlocked.Exchange(ref failNextRetryWrite, 0) == 1)
            {
                Interlocked.Increment(ref failedWrites);
                return ValueTask.FromException<long>(new LogDiskFullException(topic, new IOException("no space left on device")));
            }
            return produce();
        };
        var calls = new CallLog();
        var broken = 1;
        await using var host = await FailureHost.StartAsync(dir.Path, h =>
        {
            h.UseTransport(_ => transport);
            FailureHost.Wiring(1, (Group, Fast.Retry(0), (c, ctx) => calls.Handle(c, ctx, fail: (_, _) => Volatile.Read(ref broken) == 1)))(h);
        });
        await host.PublishAsync("K", 1);
        await host.WaitForDeadLettersAsync(Group, 1, Timeout);
        Volatile.Write(ref broken, 0);
        Volatile.Write(ref failNextRetryWrite, 1);
        await Assert.ThrowsAnyAsync<Exception>(() => host.DeadLetters.ReplayAsync(FailureHost.Topic, Group, DeadLetterSelection.Key("K")));
        Assert.Equal(1, failedWrites);
        Assert.Equal(1, await host.DeadLetters.DiscardAsync(FailureHost.Topic, Group, DeadLetterSelection.Key("K")));

        await host.PublishAsync("K", 2);
        await Eventually.WaitAsync(() => calls.HandledSeqs("K").Contains(2), Timeout, () => $"K2 handled ({calls})");
        await host.PublishAsync("K", 3);
        await Eventually.WaitAsync(() => calls.HandledSeqs("K").Contains(3), Timeout, () => $"K3 handled ({calls})");
        Assert.Equal([1, 2, 3], calls.Of("K").Select(c => c.Seq));
        // Nothing of K went through the retry topic: no pending entry diverted (and requeued) it.
        Assert.Equal(0, transport.GetOffsets($"{FailureHost.Topic}.{Group}.retry", 0).End);
    }

    // rv8
    [Fact]
    public async Task A_long_delayed_retry_does_not_hold_back_short_retries_of_other_keys()
    {
        using var dir = new TempDirectory("review-rv8");
        var calls = new CallLog();
        await using var host = await FailureHost.StartAsync(dir.Path, 4,
            (Group, Fast.Retry(0, 100, 3_600_000).Then(o => o.PrefetchRecords = 20),
             (c, ctx) => calls.Handle(c, ctx, fail: (e, n) => e.Account == "A" || n == 1))); // A keeps failing; every other key fails once
        await host.PublishAsync("A", 1);
        await Eventually.WaitAsync(() => calls.Of("A").Count == 2, Timeout, () => $"A1 failed twice, now waiting an hour ({calls})");
        var keys = Enumerable.Range(0, 120).Select(i => "k" + i).ToList();
        await host.PublishAllAsync(keys.Select(k => (k, 1)));
        await Eventually.WaitAsync(() => keys.All(k => calls.Handled(k).Count == 1), Timeout,
            () => $"every key applied on its 100 ms retry (waiting: {keys.Count(k => calls.Handled(k).Count == 0)}, of which on A's partition {keys.Count(k => calls.Handled(k).Count == 0 && FailureHost.PartitionOf(k, 4) == FailureHost.PartitionOf("A", 4))})");
    }
}

/// <summary>Forwards to a transport, letting a test step around its consumers' assignment and
/// revoke callbacks and around its writes.</summary>
internal sealed class HookedTransport(ITransport inner, bool disposeInner = false) : ITransport
{
    public delegate ValueTask Around(IReadOnlyList<TopicPartition> partitions, CancellationToken cancellationToken, Func<ValueTask> inner);

    /// <summary>Runs in place of every consumer's assignment callback; call the given function to run it.</summary>
    public Around? AroundAssigned { get; set; }

    /// <summary>Runs in place of every consumer's revoke callback; call the given function to run it.</summary>
    public Around? AroundRevoking { get; set; }

    /// <summary>Runs in place of every write (topic, the write).</summary>
    public Func<string, Func<ValueTask<long>>, ValueTask<long>>? AroundProduce { get; set; }

    public string Name => inner.Name;

    public ValueTask EnsureTopicAsync(TopicSpec topic, CancellationToken cancellationToken = default) => inner.EnsureTopicAsync(topic, cancellationToken);

    public int GetPartitionCount(string topic) => inner.GetPartitionCount(topic);

    public ValueTask<long> ProduceAsync(string topic, int partition, OutgoingRecord record, CancellationToken cancellationToken = default) =>
        AroundProduce is { } around
            ? around(topic, () => inner.ProduceAsync(topic, partition, record, cancellationToken))
            : inner.ProduceAsync(topic, partition, record, cancellationToken);

    public PartitionOffsets GetOffsets(string topic, int partition) => inner.GetOffsets(topic, partition);

    public IAsyncEnumerable<TransportRecord> ReadAsync(string topic, int partition, long fromOffset, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(topic, partition, fromOffset, cancellationToken);

    public ITransportConsumer CreateConsumer(ConsumerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return inner.CreateConsumer(new ConsumerSpec
        {
            Group = spec.Group,
            Topics = spec.Topics,
            StartFrom = spec.StartFrom,
            AlwaysFromEarliest = spec.AlwaysFromEarliest,
            OnAssigned = spec.OnAssigned is { } onAssigned
                ? (partitions, ct) => AroundAssigned is { } around ? around(partitions, ct, () => onAssigned(partitions, ct)) : onAssigned(partitions, ct)
                : null,
            OnRevoking = spec.OnRevoking is { } onRevoking
                ? (partitions, ct) => AroundRevoking is { } around ? around(partitions, ct, () => onRevoking(partitions, ct)) : onRevoking(partitions, ct)
                : null,
        });
    }

    public ValueTask DisposeAsync() => disposeInner ? inner.DisposeAsync() : ValueTask.CompletedTask;
}
