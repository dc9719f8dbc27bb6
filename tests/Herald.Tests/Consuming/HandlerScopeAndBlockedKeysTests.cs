using System.Collections.Concurrent;
using Herald.DeadLetters;
using Herald.Internal;
using Herald.Subscriptions;
using Herald.Tests.Failures;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Tests.Consuming;

/// <summary>How handler types get their DI scopes (per event, per attempt, per fetched batch), and
/// how a partition pauses once MaxBlockedKeys of its keys are parked.</summary>
public class HandlerScopeAndBlockedKeysTests
{
    private const string Group = "billing";
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_handler_type_gets_a_new_scope_per_event_and_each_scope_is_disposed_after_its_event()
    {
        using var dir = new TempDirectory("scope");
        var ledger = new ScopeLedger();
        await using var host = await StartAsync(dir.Path, ledger, Fast.Retry(0));
        await host.PublishAllAsync([("A", 0), ("A", 1), ("B", 0)]);

        await Eventually.WaitAsync(() => ledger.Seen.Count == 3 && ledger.Units.All(u => u.Disposals > 0), Soon, ledger.Describe);
        var seen = ledger.Seen.ToList();
        Assert.All(seen, s => Assert.False(s.UnitWasDisposed, $"{s.Account}{s.Seq} got a disposed unit of work"));
        Assert.Equal(3, seen.Select(s => s.UnitId).Distinct().Count()); // one scope per event
        Assert.Equal(3, ledger.Units.Count);
        Assert.All(ledger.Units, u =>
        {
            Assert.Equal(1, u.Disposals);                  // disposed once
            Assert.Equal(1, u.Started);                    // by one event
            Assert.Equal(1, u.FinishedWhenDisposed);       // after that event finished
        });
    }

    [Fact]
    public async Task Each_immediate_retry_of_a_handler_type_gets_a_fresh_scope_and_the_failed_attempts_scope_is_disposed_first()
    {
        using var dir = new TempDirectory("scope");
        var ledger = new ScopeLedger { Fails = (c, attempt) => c.Account == "A" && attempt < 3 };
        await using var host = await StartAsync(dir.Path, ledger, Fast.Retry(2));
        await host.PublishAsync("A", 0);

        await Eventually.WaitAsync(() => ledger.Seen.Count == 3 && ledger.Units.All(u => u.Disposals > 0), Soon, ledger.Describe);
        var attempts = ledger.Seen.ToList();
        Assert.Equal([1, 2, 3], attempts.Select(s => s.Attempt));
        Assert.Equal(3, attempts.Select(s => s.UnitId).Distinct().Count()); // a fresh unit of work per attempt
        for (var i = 1; i < attempts.Count; i++)
            Assert.Contains(attempts[i - 1].UnitId, attempts[i].DisposedBefore); // the failed attempt's scope went first
        Assert.All(attempts, s => Assert.False(s.UnitWasDisposed));
        Assert.All(ledger.Units, u => Assert.Equal(1, u.Disposals));
        Assert.Empty(await host.ListAsync(Group)); // the third attempt succeeded
    }

    [Fact]
    public async Task With_PerBatch_events_fetched_together_share_one_scope_disposed_once_all_its_events_finished()
    {
        using var dir = new TempDirectory("scope");
        // In the log before the consumer starts: its first fetch takes them together.
        var events = new List<(string, int)>();
        for (var seq = 0; seq < 3; seq++)
            foreach (var key in new[] { "A", "B", "C" })
                events.Add((key, seq));
        await FailureHost.PublishBeforeConsumingAsync(dir.Path, [.. events]);

        var ledger = new ScopeLedger();
        await using var host = await StartAsync(dir.Path, ledger, Fast.Retry(0).Then(o => o.HandlerScope = HandlerScope.PerBatch));

        await Eventually.WaitAsync(() => ledger.Seen.Count == events.Count && ledger.Units.All(u => u.Disposals > 0), Soon, ledger.Describe);
        var seen = ledger.Seen.ToList();
        Assert.All(seen, s => Assert.False(s.UnitWasDisposed, $"{s.Account}{s.Seq} got a disposed unit of work"));
        var shared = seen.GroupBy(s => s.UnitId).Max(g => g.Count());
        Assert.True(shared >= 2, $"no two events shared a scope: {ledger.Describe()}");
        Assert.True(ledger.Units.Count < events.Count, ledger.Describe());
        Assert.All(ledger.Units, u =>
        {
            Assert.Equal(1, u.Disposals);
            // Disposed only once every event that used it had finished.
            Assert.Equal(u.Started, u.StartedWhenDisposed);
            Assert.Equal(u.Started, u.FinishedWhenDisposed);
        });
    }

    [Fact]
    public async Task A_partition_with_MaxBlockedKeys_parked_keys_pauses_until_one_is_discarded()
    {
        using var dir = new TempDirectory("blocked");
        var log = new CallLog();
        var options = Fast.Retry(0).Then(o =>
        {
            o.MaxBlockedKeys = 2;
            o.DeadLetterMode = DeadLetterMode.Park;
        });
        await using var host = await FailureHost.StartAsync(dir.Path, 1,
            (Group, options, (c, ctx) => log.Handle(c, ctx, fail: (e, _) => e.Account is "k1" or "k2")));
        var routing = host.Host.Services.GetRequiredService<HeraldRuntime>().Routing.Get(FailureHost.Topic, Group);

        // One parked key, under the limit: other keys flow.
        await host.PublishAsync("k1", 0);
        await host.WaitForDeadLettersAsync(Group, 1, Soon);
        await host.PublishAsync("ok", 0);
        await Eventually.WaitAsync(() => log.Handled("ok").Count == 1, Soon, () => $"ok0 handled with one key parked ({log})");

        // Two parked keys: the limit. The partition pauses, healthy keys included.
        await host.PublishAsync("k2", 0);
        await host.WaitForDeadLettersAsync(Group, 2, Soon);
        // Parked in the subscription's key state too (it is parked just after its dead letter is written).
        await Eventually.WaitAsync(() => routing.BlockedKeys(0) == 2, Soon, () => $"2 blocked keys (have {routing.BlockedKeys(0)})");
        // The key is parked (above) on the handler's flow; the fetch loop is told to pause only when
        // the dispatcher then finishes k2's record, and a fetch already waiting meanwhile would take
        // what is published in that window. Its budget coming back shows that it was finished.
        await Eventually.WaitAsync(() => Runner(host).PrefetchedMain.Records == 0, Soon, () => $"k2 finished (prefetched {Runner(host).PrefetchedMain})");
        await host.PublishAllAsync([("ok", 1), ("ok", 2), ("ok", 3)]);
        await Eventually.QuietPeriod(1500);
        Assert.True(log.Handled("ok").Count == 1, $"ok events were handled while 2 keys were parked (MaxBlockedKeys = 2): {log}");

        // One key discarded: under the limit again, and the partition resumes.
        Assert.Equal(1, await host.DeadLetters.DiscardAsync(FailureHost.Topic, Group, DeadLetterSelection.Key("k1")));
        Assert.Equal(1, routing.BlockedKeys(0));
        await Eventually.WaitAsync(() => log.Handled("ok").Count == 4, Soon, () => $"ok1..ok3 handled after the discard ({log})");
        Assert.Equal([0, 1, 2, 3], log.HandledSeqs("ok"));
        var left = Assert.Single(await host.ListAsync(Group));
        Assert.Equal("k2", left.KeyText);
    }

    private static Herald.Internal.Pipeline.SubscriptionRunner Runner(FailureHost host) =>
        host.Host.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<Herald.Hosting.HeraldHostedService>().Single().Runners[0];

    private static Task<FailureHost> StartAsync(string directory, ScopeLedger ledger, Action<SubscriptionOptions> options) =>
        FailureHost.StartAsync(directory,
            h =>
            {
                h.Topic(FailureHost.Topic, 1);
                h.Event<Charge>(FailureHost.Topic, c => c.Account);
                h.Subscribe(Group, s =>
                {
                    options(s.Options);
                    s.Handle<Charge, UnitOfWorkHandler>();
                });
            },
            services =>
            {
                services.AddSingleton(ledger);
                services.AddScoped<UnitOfWork>();
            });
}

/// <summary>What the scope tests observed: every scoped unit of work created, and every handler invocation.</summary>
public sealed class ScopeLedger
{
    private int _nextId;
    private readonly ConcurrentQueue<UnitOfWork> _units = new();
    private readonly ConcurrentDictionary<int, bool> _disposed = new();
    private readonly ConcurrentQueue<ScopeUse> _seen = new();

    /// <summary>Whether an attempt (1-based) of an event throws.</summary>
    public Func<Charge, int, bool> Fails { get; init; } = (_, _) => false;

    public IReadOnlyList<UnitOfWork> Units => [.. _units];

    public IReadOnlyCollection<ScopeUse> Seen => [.. _seen];

    internal int Created(UnitOfWork unit)
    {
        _units.Enqueue(unit);
        return Interlocked.Increment(ref _nextId);
    }

    internal void Disposed(UnitOfWork unit) => _disposed[unit.Id] = true;

    internal void Use(Charge charge, EventContext context, UnitOfWork unit) =>
        _seen.Enqueue(new ScopeUse(charge.Account, charge.Seq, context.Attempt, unit.Id, unit.Disposals > 0, [.. _disposed.Keys]));

    public string Describe() =>
        "seen: " + string.Join(" ", _seen.Select(s => $"{s.Account}{s.Seq}#{s.Attempt}->u{s.UnitId}"))
        + "; units: " + string.Join(" ", _units.Select(u => $"u{u.Id}(started {u.Started}, disposals {u.Disposals}, finished at dispose {u.FinishedWhenDisposed})"));
}

public sealed record ScopeUse(string Account, int Seq, int Attempt, int UnitId, bool UnitWasDisposed, IReadOnlyCollection<int> DisposedBefore);

/// <summary>A scoped dependency that counts the events using it and remembers how many of them had
/// finished when it was disposed.</summary>
public sealed class UnitOfWork : IDisposable
{
    private readonly ScopeLedger _ledger;
    private int _started, _finished, _disposals;

    public UnitOfWork(ScopeLedger ledger)
    {
        _ledger = ledger;
        Id = ledger.Created(this);
    }

    public int Id { get; }
    public int Started => Volatile.Read(ref _started);
    public int Disposals => Volatile.Read(ref _disposals);
    public int StartedWhenDisposed { get; private set; } = -1;
    public int FinishedWhenDisposed { get; private set; } = -1;

    public void Begin() => Interlocked.Increment(ref _started);

    public void End() => Interlocked.Increment(ref _finished);

    public void Dispose()
    {
        if (Interlocked.Increment(ref _disposals) == 1)
        {
            StartedWhenDisposed = Volatile.Read(ref _started);
            FinishedWhenDisposed = Volatile.Read(ref _finished);
        }
        _ledger.Disposed(this);
    }
}

public sealed class UnitOfWorkHandler(UnitOfWork unit, ScopeLedger ledger) : IEventHandler<Charge>
{
    public async ValueTask HandleAsync(Charge evt, EventContext context, CancellationToken cancellationToken)
    {
        unit.Begin();
        try
        {
            ledger.Use(evt, context, unit);
            await Task.Yield(); // other events of the batch run meanwhile
            if (ledger.Fails(evt, context.Attempt)) PaymentGateway.Charge(evt);
        }
        finally
        {
            unit.End();
        }
    }
}
