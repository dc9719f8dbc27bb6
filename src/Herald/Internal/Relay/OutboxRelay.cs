using Herald.Diagnostics;
using Herald.Log;
using Herald.Outbox;
using Herald.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Internal.Relay;

/// <summary>Publishes outbox events to the transport and removes them, in rounds of up to
/// <see cref="OutboxOptions.BatchSize"/>. One relay relays at a time (the store's leadership: a
/// lease on SQLite, an advisory lock on PostgreSQL); others stand by and take over a crashed one's
/// work. Order per key holds end to end: a round sends each partition's events as one append, in
/// the order they were written, and an event whose publish failed holds its key's later events back
/// until it is out (other keys go on). An event is removed only once the transport has it durably,
/// so a crash in between publishes it again: at least once, with the same <c>ce_id</c>, which a
/// consumer's inbox recognises.</summary>
internal sealed class OutboxRelay(
    IOutboxStore store,
    ITransport transport,
    TopicTable topics,
    OutboxOptions options,
    OutboxSignal signal,
    HeraldTelemetry telemetry,
    TimeProvider time,
    ILogger logger) : BackgroundService
{
    private readonly string _id = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
    private long _leadSince = long.MinValue; // timestamp of the last successful TryLead
    private long _statsAt = long.MinValue;
    private int _roundRobin;

    /// <summary>Rounds that published something (for tests and diagnostics).</summary>
    internal long Rounds;

    /// <summary>Whether this relay held the leadership when it last looked (for tests).</summary>
    internal bool Leading => _leadSince != long.MinValue;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await store.InitializeAsync(stoppingToken).ConfigureAwait(false);
        var listening = ListenAsync(stoppingToken);
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var armed = signal.Armed; // before looking: a commit made meanwhile wakes the wait below
                if (!await LeadAsync(stoppingToken).ConfigureAwait(false))
                {
                    // Standing by: look again well within the leader's lease.
                    await signal.WaitAsync(armed, options.Lease / 3, stoppingToken).ConfigureAwait(false);
                    continue;
                }
                var read = await RelayRoundAsync(stoppingToken).ConfigureAwait(false);
                await ObserveAsync(stoppingToken).ConfigureAwait(false);
                failures = 0;
                if (read == options.BatchSize || read < 0) continue; // more are waiting, or it leads again first
                await signal.WaitAsync(armed, signal.Eager ? options.EagerPollInterval : options.PollInterval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // The database away, a connection dropped mid-round: nothing was removed that was
                // not published; look again after a backoff (and take the leadership again first).
                failures++;
                var delay = Backoff(failures);
                LogMessages.OutboxRelayFailed(logger, e, delay);
                _leadSince = long.MinValue;
                try
                {
                    await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        await listening.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        try
        {
            await store.ReleaseLeadAsync(_id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogMessages.OutboxRelayFailed(logger, e, TimeSpan.Zero); // the leadership runs out by itself
        }
    }

    private static TimeSpan Backoff(int failures) => TimeSpan.FromMilliseconds(Math.Min(30_000, 100 * Math.Pow(2, Math.Min(failures, 10))));

    /// <summary>Hears of commits in other processes (and this one) where the store can tell
    /// (PostgreSQL's LISTEN/NOTIFY), listening again after a failure; polling covers the gaps.</summary>
    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await store.ListenAsync(signal.Wake, stoppingToken).ConfigureAwait(false);
                return; // the store cannot listen, or it stopped because we are stopping
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failures++;
                var delay = Backoff(failures);
                LogMessages.OutboxListenFailed(logger, e, delay);
                signal.Wake(); // commits may have gone unheard meanwhile
                try
                {
                    await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Takes or renews the leadership when a third of the lease has gone by since it was last taken.</summary>
    private async ValueTask<bool> LeadAsync(CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        if (_leadSince != long.MinValue && time.GetElapsedTime(_leadSince, now) < options.Lease / 3) return true;
        if (!await store.TryLeadAsync(_id, options.Lease, cancellationToken).ConfigureAwait(false))
        {
            _leadSince = long.MinValue;
            return false;
        }
        _leadSince = now;
        return true;
    }

    /// <summary>One round: the due events, grouped by partition in the order written, each group
    /// sent as one append; a group that fails is sent again one event at a time, so that a bad event
    /// holds back only its own key. Returns how many events were read, or -1 when the leadership
    /// must be taken again before anything is published.</summary>
    internal async Task<int> RelayRoundAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var due = await store.ReadDueAsync(options.BatchSize, now, cancellationToken).ConfigureAwait(false);
        if (due.Count == 0) return 0;
        // A round that took so long that the lease may have passed to another relay publishes
        // nothing: the next round, at once, takes the leadership again first.
        if (_leadSince == long.MinValue || time.GetElapsedTime(_leadSince) > options.Lease / 2)
        {
            _leadSince = long.MinValue;
            return -1;
        }
        var groups = new Dictionary<(string Topic, int Partition), List<OutboxMessage>>();
        foreach (var message in due)
        {
            var partitions = await topics.PartitionsAsync(message.Topic, cancellationToken).ConfigureAwait(false);
            var partition = message.Key is { } key
                ? Partitioner.ForKey(key, partitions)
                : (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)partitions);
            if (!groups.TryGetValue((message.Topic, partition), out var list)) groups[(message.Topic, partition)] = list = [];
            list.Add(message);
        }
        var sends = new List<Task<Outcome>>(groups.Count);
        foreach (var (target, messages) in groups) sends.Add(SendAsync(target.Topic, target.Partition, messages, cancellationToken));
        var published = new List<long>(due.Count);
        var failed = new List<(OutboxMessage Message, Exception Error)>();
        foreach (var outcome in await Task.WhenAll(sends).ConfigureAwait(false))
        {
            published.AddRange(outcome.Published);
            failed.AddRange(outcome.Failed);
        }
        // Removed only once durable on the transport; a crash before this publishes them again.
        if (published.Count > 0)
        {
            if (options.AfterPublish is { } afterPublish) await afterPublish(published, cancellationToken).ConfigureAwait(false);
            await store.DeleteAsync(published, cancellationToken).ConfigureAwait(false);
            telemetry.Relayed(published.Count);
        }
        foreach (var (message, error) in failed)
        {
            var attempts = message.Attempts + 1;
            var delay = TimeSpan.FromTicks(Math.Min(options.MaxRetryDelay.Ticks, options.RetryDelay.Ticks * (1L << Math.Min(attempts - 1, 30))));
            await store.DeferAsync(message.Id, attempts, now + (long)delay.TotalMilliseconds, Describe(error), cancellationToken).ConfigureAwait(false);
            if (attempts >= options.StuckAttempts) LogMessages.OutboxStuck(logger, error, message.Id, message.Topic, attempts);
            else LogMessages.OutboxPublishFailed(logger, error, message.Id, message.Topic, attempts, delay);
        }
        Interlocked.Increment(ref Rounds);
        return due.Count;
    }

    private sealed record Outcome(List<long> Published, List<(OutboxMessage, Exception)> Failed);

    private async Task<Outcome> SendAsync(string topic, int partition, List<OutboxMessage> messages, CancellationToken cancellationToken)
    {
        var published = new List<long>(messages.Count);
        var failed = new List<(OutboxMessage, Exception)>();
        try
        {
            var records = new OutgoingRecord[messages.Count];
            for (var i = 0; i < records.Length; i++) records[i] = ToRecord(messages[i]);
            await transport.ProduceManyAsync(topic, partition, records, cancellationToken).ConfigureAwait(false);
            foreach (var m in messages) published.Add(m.Id);
            return new Outcome(published, failed);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            // Find the events that fail: one at a time, in order. A key whose event failed sends
            // nothing more this round (the store holds its later events back from now on).
        }
        var blocked = new HashSet<ReadOnlyMemory<byte>>(ByteKeyComparer.Instance);
        foreach (var m in messages)
        {
            if (m.Key is { } key && blocked.Contains(key)) continue; // stays due, behind the failed one
            try
            {
                await transport.ProduceAsync(topic, partition, ToRecord(m), cancellationToken).ConfigureAwait(false);
                published.Add(m.Id);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                failed.Add((m, e));
                if (m.Key is { } failedKey) blocked.Add(failedKey);
            }
        }
        return new Outcome(published, failed);
    }

    private static OutgoingRecord ToRecord(OutboxMessage m) =>
        new(m.Key, m.Value, RecordHeaders.FromEncoded(m.Headers, m.HeaderCount));

    private static string Describe(Exception e)
    {
        var text = $"{e.GetType().FullName}: {e.Message}";
        return text.Length <= 2000 ? text : text[..2000];
    }

    /// <summary>Refreshes the outbox metrics at most once a second.</summary>
    private async ValueTask ObserveAsync(CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        if (_statsAt != long.MinValue && time.GetElapsedTime(_statsAt, now) < TimeSpan.FromSeconds(1)) return;
        _statsAt = now;
        telemetry.Outbox = await store.StatsAsync(options.StuckAttempts, cancellationToken).ConfigureAwait(false);
        telemetry.OutboxObservedMs = time.GetUtcNow().ToUnixTimeMilliseconds();
    }
}
