using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Herald.DeadLetters;
using Herald.Log;
using Herald.Subscriptions;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Tests.Failures;

/// <summary>The event the failure tests publish: keyed by account, numbered per account.</summary>
public sealed record Charge(string Account, int Seq);

/// <summary>Decodes a stored <see cref="Charge"/> as Herald's default serializer wrote it.</summary>
public static class Payload
{
    private static readonly System.Text.Json.JsonSerializerOptions Web = new(System.Text.Json.JsonSerializerDefaults.Web);

    public static Charge Charge(ReadOnlyMemory<byte>? value) =>
        System.Text.Json.JsonSerializer.Deserialize<Charge>(value!.Value.Span, Web)!;
}

/// <summary>A second event type, for hosts that map a type the consumer does not know.</summary>
public sealed record Refund(string Account, int Seq);

/// <summary>Thrown by <see cref="PaymentGateway.Charge"/>: the failure the tests dead-letter.</summary>
public sealed class CardDeclinedException : Exception
{
    public CardDeclinedException() { }

    public CardDeclinedException(string message) : base(message) { }

    public CardDeclinedException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Application code that fails: its methods are the "first application frame" of a dead letter.</summary>
public static class PaymentGateway
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Charge(Charge charge) =>
        throw new CardDeclinedException($"card declined for {charge.Account} #{charge.Seq}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Capture(Charge charge) =>
        throw new CardDeclinedException($"capture declined for {charge.Account} #{charge.Seq}");
}

/// <summary>A second, different failure (another exception type in another method).</summary>
public static class LedgerClient
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Post(Charge charge) =>
        throw new TimeoutException($"ledger timed out posting {charge.Account} #{charge.Seq}");
}

/// <summary>One handler invocation as the handler saw it.</summary>
public sealed record Call(
    string Group,
    string Account,
    int Seq,
    int Invocation,
    int Attempt,
    string Topic,
    long Offset,
    string EventId,
    long WallMs,
    long Ticks,
    bool Succeeded)
{
    public double MsSince(Call earlier) => Stopwatch.GetElapsedTime(earlier.Ticks, Ticks).TotalMilliseconds;
}

/// <summary>Every handler invocation of a test, in the order they happened.</summary>
public sealed class CallLog
{
    private readonly ConcurrentQueue<Call> _calls = new();
    private readonly ConcurrentDictionary<(string Group, string Account, int Seq), int> _invocations = new();

    /// <summary>Records an invocation and throws (from <see cref="PaymentGateway.Charge"/>) when
    /// <paramref name="fail"/> says this invocation (1-based, per group and event) fails.</summary>
    public ValueTask Handle(Charge charge, EventContext context, Func<Charge, int, bool>? fail = null, Action<Charge>? thrower = null)
    {
        var n = _invocations.AddOrUpdate((context.Group, charge.Account, charge.Seq), 1, (_, v) => v + 1);
        var failing = fail?.Invoke(charge, n) ?? false;
        var e = context.Envelope;
        _calls.Enqueue(new Call(context.Group, charge.Account, charge.Seq, n, context.Attempt, e.Topic, e.Offset, e.Id,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Stopwatch.GetTimestamp(), !failing));
        if (failing) (thrower ?? PaymentGateway.Charge)(charge);
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<Call> All => [.. _calls];

    public List<Call> Of(string account, string? group = null) =>
        [.. _calls.Where(c => c.Account == account && (group is null || c.Group == group))];

    public List<Call> Handled(string account, string? group = null) =>
        [.. _calls.Where(c => c.Succeeded && c.Account == account && (group is null || c.Group == group))];

    public List<int> HandledSeqs(string account, string? group = null) => [.. Handled(account, group).Select(c => c.Seq)];

    public int Count(Func<Call, bool> predicate) => _calls.Count(predicate);

    /// <summary>The calls so far, as "A0:1!" (account, seq, invocation, ! when it failed), for messages.</summary>
    public override string ToString() => string.Join(" ", _calls.Select(c => $"{c.Account}{c.Seq}:{c.Invocation}{(c.Succeeded ? "" : "!")}"));
}

/// <summary>A running host with Herald on the embedded log, and what the tests use of it.</summary>
public sealed class FailureHost : IAsyncDisposable
{
    public const string Topic = "charges";

    private bool _stopped;

    private FailureHost(IHost host)
    {
        Host = host;
        Publisher = host.Services.GetRequiredService<IEventPublisher>();
        DeadLetters = host.Services.GetRequiredService<DeadLetterQueue>();
        Transport = host.Services.GetRequiredService<ITransport>();
    }

    public IHost Host { get; }
    public IEventPublisher Publisher { get; }
    public DeadLetterQueue DeadLetters { get; }
    public ITransport Transport { get; }

    public static async Task<FailureHost> StartAsync(string directory, Action<HeraldBuilder> configure, Action<IServiceCollection>? services = null) =>
        new(await TestHost.StartAsync(directory, configure, services));

    /// <summary>The usual wiring: <see cref="Charge"/> on "charges" keyed by account, and one
    /// subscription per (group, options, handler).</summary>
    public static Task<FailureHost> StartAsync(string directory, int partitions, params (string Group, Action<SubscriptionOptions> Options, Func<Charge, EventContext, ValueTask> Handler)[] groups) =>
        StartAsync(directory, Wiring(partitions, groups));

    public static Action<HeraldBuilder> Wiring(int partitions, params (string Group, Action<SubscriptionOptions> Options, Func<Charge, EventContext, ValueTask> Handler)[] groups) =>
        h =>
        {
            h.Topic(Topic, partitions);
            h.Event<Charge>(Topic, c => c.Account);
            foreach (var (group, options, handler) in groups)
                h.Subscribe(group, s =>
                {
                    options(s.Options);
                    s.Handle<Charge>((c, ctx, ct) => handler(c, ctx));
                });
        };

    /// <summary>Publishes with no subscription running (a producer-only host), so that a consumer
    /// started next finds the events in the log and fetches them together, in one batch.</summary>
    public static async Task PublishBeforeConsumingAsync(string directory, params (string Account, int Seq)[] events)
    {
        await using var producer = await StartAsync(directory, h =>
        {
            h.Topic(Topic, 1);
            h.Event<Charge>(Topic, c => c.Account);
        });
        await producer.PublishAllAsync(events);
    }

    public ValueTask PublishAsync(string account, int seq, string? id = null) =>
        Publisher.PublishAsync(new Charge(account, seq), id is null ? null : new PublishOptions { Id = id });

    /// <summary>Publishes in order (appends are queued in call order) and waits for all to be durable.</summary>
    public async Task PublishAllAsync(IEnumerable<(string Account, int Seq)> events)
    {
        var pending = new List<Task>();
        foreach (var (account, seq) in events) pending.Add(PublishAsync(account, seq).AsTask());
        await Task.WhenAll(pending);
    }

    public Task<IReadOnlyList<DeadLetter>> ListAsync(string group) => DeadLetters.ListAsync(Topic, group);

    /// <summary>Waits until the group has exactly <paramref name="count"/> unresolved dead letters.</summary>
    public async Task<IReadOnlyList<DeadLetter>> WaitForDeadLettersAsync(string group, int count, TimeSpan? timeout = null)
    {
        IReadOnlyList<DeadLetter> letters = [];
        await Eventually.WaitAsync(async () => (letters = await ListAsync(group)).Count == count, timeout,
            () => $"{count} dead letters in {group} (have {letters.Count}: {Describe(letters)})");
        return letters;
    }

    public static string Describe(IEnumerable<DeadLetter> letters) =>
        string.Join(", ", letters.Select(l => $"{l.KeyText}@{l.OriginalOffset}:{l.Reason}"));

    /// <summary>Every event record of one partition of a topic, read outside any group (the retry
    /// topic's done markers, Herald's bookkeeping, are left out).</summary>
    public async Task<List<TransportRecord>> ReadAsync(string topic, int partition = 0)
    {
        var list = new List<TransportRecord>();
        await foreach (var r in Transport.ReadAsync(topic, partition, 0))
            if (RetryTests.Header(r.Headers, HeaderNames.RetryOp) is null) list.Add(r);
        return list;
    }

    /// <summary>The number of event records in a partition (done markers left out).</summary>
    public long EndOffset(string topic, int partition = 0)
    {
        long count = 0;
        foreach (var r in Transport.ReadAsync(topic, partition, 0).ToBlockingEnumerable())
            if (RetryTests.Header(r.Headers, HeaderNames.RetryOp) is null) count++;
        return count;
    }

    public static int PartitionOf(string key, int partitions) => Herald.Transport.Partitioner.ForKey(Encoding.UTF8.GetBytes(key), partitions);

    /// <summary>Appends a record as it is, bypassing the publisher (for poison).</summary>
    public ValueTask<long> AppendRawAsync(string key, byte[]? value, params (string Name, string Value)[] headers) =>
        Transport.ProduceAsync(Topic, 0, new OutgoingRecord(Encoding.UTF8.GetBytes(key), value,
            [.. headers.Select(h => new LogHeader(h.Name, Encoding.UTF8.GetBytes(h.Value)))]));

    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await Host.StopAsync();
        if (Host is IAsyncDisposable d) await d.DisposeAsync();
        else Host.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}

/// <summary>Polling for conditions that need async work to check.</summary>
public static class Eventually
{
    public static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, Func<string>? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what?.Invoke() ?? "the condition"}");
            await Task.Delay(10);
        }
    }

    /// <summary><see cref="TestHost.WaitUntilAsync"/> with a message computed when it times out.</summary>
    public static Task WaitAsync(Func<bool> condition, TimeSpan? timeout = null, Func<string>? what = null) =>
        WaitAsync(() => Task.FromResult(condition()), timeout, what);

    /// <summary>A short wait to show that something did NOT happen.</summary>
    public static Task QuietPeriod(int ms = 150) => Task.Delay(ms);
}

/// <summary>Timing slack of the real clock: .NET timers count coarse milliseconds, so one that
/// waits until a wall-clock due time can fire a few ms before it (see DelayedRetryTests).</summary>
public static class Clock
{
    public const int TimerSlackMs = 5;
}

/// <summary>Retry settings small enough for tests.</summary>
public static class Fast
{
    public static Action<SubscriptionOptions> Retry(int immediate, params int[] delayedMs) => o =>
    {
        o.Retry.ImmediateRetries = immediate;
        o.Retry.Backoff = TimeSpan.FromMilliseconds(1);
        o.Retry.MaxBackoff = TimeSpan.FromMilliseconds(10);
        o.Retry.Delayed = [.. delayedMs.Select(ms => TimeSpan.FromMilliseconds(ms))];
        o.CommitInterval = TimeSpan.FromMilliseconds(20);
    };

    public static Action<SubscriptionOptions> Then(this Action<SubscriptionOptions> first, Action<SubscriptionOptions> then) => o =>
    {
        first(o);
        then(o);
    };

    public static Func<Charge, EventContext, ValueTask> NoFailures(CallLog log) => (c, ctx) => log.Handle(c, ctx);
}
