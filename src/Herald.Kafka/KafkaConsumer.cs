using System.Collections.Concurrent;
using Confluent.Kafka;
using Herald.Transport;
using HeraldPartition = Herald.Transport.TopicPartition;
using KafkaPartition = Confluent.Kafka.TopicPartition;

namespace Herald.Kafka;

/// <summary>A member of a Kafka consumer group. librdkafka's consumer is driven from one thread of
/// its own: fetches are handed to it, and the group's rebalance callbacks run there, inside a
/// fetch, where Herald finishes (or abandons) the revoked partitions' work and commits what
/// finished before they go. Commits are manual and only of offsets Herald hands in.</summary>
internal sealed class KafkaConsumer : ITransportConsumer
{
    private readonly KafkaTransport _transport;
    private readonly ConsumerSpec _spec;
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly Thread _thread;
    private readonly SemaphoreSlim _requests = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<HeraldPartition, long> _committed = new();
    private readonly HashSet<HeraldPartition> _lost = [];
    private volatile HeraldPartition[] _assignment = [];
    private Fetch? _fetch;
    private bool _joined;
    private volatile bool _closing;
    private int _disposed;

    private sealed class Fetch(List<TransportRecord> into, int maxRecords, long maxBytes, CancellationToken cancellationToken)
    {
        public readonly List<TransportRecord> Into = into;
        public readonly int MaxRecords = maxRecords;
        public readonly long MaxBytes = maxBytes;
        public readonly CancellationToken Cancellation = cancellationToken;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public KafkaConsumer(KafkaTransport transport, ConsumerSpec spec)
    {
        _transport = transport;
        _spec = spec;
        var reset = spec.StartFrom == StartFrom.Latest ? AutoOffsetReset.Latest : AutoOffsetReset.Earliest;
        _consumer = KafkaTransport.Build(() => new ConsumerBuilder<byte[]?, byte[]?>(transport.Options.ConsumerConfig(spec.Group, reset))
            .SetPartitionsAssignedHandler((_, partitions) => Assigned(partitions))
            .SetPartitionsRevokedHandler((_, partitions) => Revoked(partitions, lost: false))
            .SetPartitionsLostHandler((_, partitions) => Revoked(partitions, lost: true))
            .Build(), "consumer");
        _consumer.Subscribe(spec.Topics);
        _thread = new Thread(Run) { IsBackground = true, Name = $"herald-kafka-{spec.Group}" };
        _thread.Start();
    }

    public IReadOnlyCollection<HeraldPartition> Assignment => _assignment;

    public async ValueTask FetchAsync(List<TransportRecord> into, int maxRecords, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(into);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var fetch = new Fetch(into, Math.Max(1, maxRecords), Math.Max(1, maxBytes), cancellationToken);
        if (Interlocked.CompareExchange(ref _fetch, fetch, null) is not null)
            throw new InvalidOperationException("a fetch is already running on this consumer");
        _requests.Release();
        await fetch.Done.Task.ConfigureAwait(false);
    }

    /// <summary>The consumer's own thread: serves one fetch at a time.</summary>
    private void Run()
    {
        while (true)
        {
            try
            {
                _requests.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var fetch = _fetch!;
            try
            {
                Serve(fetch);
                Volatile.Write(ref _fetch, null);
                fetch.Done.TrySetResult();
            }
            catch (OperationCanceledException) when (fetch.Cancellation.IsCancellationRequested || _stop.IsCancellationRequested)
            {
                Volatile.Write(ref _fetch, null);
                fetch.Done.TrySetCanceled(fetch.Cancellation.IsCancellationRequested ? fetch.Cancellation : _stop.Token);
            }
            catch (Exception e)
            {
                Volatile.Write(ref _fetch, null);
                fetch.Done.TrySetException(e);
            }
        }
    }

    private void Serve(Fetch fetch)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(fetch.Cancellation, _stop.Token);
        long bytes = 0;
        var added = 0;
        // The first waits (rebalances run inside it); the rest take what is already here.
        var result = Consume(wait: true, either.Token);
        while (result is not null)
        {
            var record = KafkaTransport.ToRecord(result);
            fetch.Into.Add(record);
            added++;
            bytes += record.Size;
            if (added >= fetch.MaxRecords || bytes >= fetch.MaxBytes) return;
            result = Consume(wait: false, either.Token);
        }
    }

    private ConsumeResult<byte[]?, byte[]?>? Consume(bool wait, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                var result = wait ? _consumer.Consume(cancellationToken) : _consumer.Consume(TimeSpan.Zero);
                if (result is null || result.IsPartitionEOF)
                {
                    if (!wait) return null;
                    continue;
                }
                return result;
            }
            catch (ConsumeException e) when (!e.Error.IsFatal && e.Error.Code is ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic or ErrorCode.Local_UnknownPartition)
            {
                // A subscribed topic not there yet: wait for it rather than fail the fetch.
                if (!wait) return null;
                cancellationToken.WaitHandle.WaitOne(100);
                cancellationToken.ThrowIfCancellationRequested();
            }
            catch (ConsumeException e)
            {
                throw new HeraldException($"Kafka consumer of group '{_spec.Group}' failed: {e.Error.Code} ({e.Error.Reason})", e);
            }
        }
    }

    private List<TopicPartitionOffset> Assigned(List<KafkaPartition> partitions)
    {
        var given = partitions.ConvertAll(KafkaTransport.ToHerald);
        var positions = new List<TopicPartitionOffset>(partitions.Count);
        if (partitions.Count > 0)
        {
            var committed = _consumer.Committed(partitions, _transport.Options.RequestTimeout);
            foreach (var c in committed)
            {
                var tp = KafkaTransport.ToHerald(c.TopicPartition);
                lock (_lost) _lost.Remove(tp);
                if (c.Offset.Value >= 0)
                {
                    _committed[tp] = c.Offset.Value;
                    positions.Add(new TopicPartitionOffset(c.TopicPartition, c.Offset));
                }
                else
                {
                    _committed.TryRemove(tp, out _);
                    // Retry topics start from their first record whatever the group's reset says.
                    var earliest = _spec.AlwaysFromEarliest?.Contains(tp.Topic) == true;
                    positions.Add(new TopicPartitionOffset(c.TopicPartition, earliest ? Offset.Beginning : Offset.Unset));
                }
            }
        }
        _assignment = [.. _assignment.Union(given)];
        if (_spec.OnAssigned is { } onAssigned && (given.Count > 0 || !_joined))
            onAssigned(given, _stop.Token).AsTask().GetAwaiter().GetResult();
        _joined = true;
        return positions;
    }

    private void Revoked(List<TopicPartitionOffset> partitions, bool lost)
    {
        var taken = partitions.ConvertAll(p => KafkaTransport.ToHerald(p.TopicPartition));
        if (lost)
        {
            // Another member may own them already: finish nothing more of them, commit nothing.
            lock (_lost) foreach (var tp in taken) _lost.Add(tp);
        }
        try
        {
            // Stopping: the subscription has already drained and committed what finished.
            if (!_closing && _spec.OnRevoking is { } onRevoking)
                onRevoking(taken, _stop.Token).AsTask().GetAwaiter().GetResult();
        }
        finally
        {
            _assignment = [.. _assignment.Except(taken)];
            foreach (var tp in taken) _committed.TryRemove(tp, out _);
        }
    }

    public async ValueTask CommitAsync(IReadOnlyList<KeyValuePair<HeraldPartition, long>> offsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        var commits = new List<TopicPartitionOffset>(offsets.Count);
        lock (_lost)
        {
            foreach (var (tp, offset) in offsets)
                if (!_lost.Contains(tp)) commits.Add(new TopicPartitionOffset(KafkaTransport.ToKafka(tp), new Offset(offset)));
        }
        if (commits.Count == 0) return;
        // On the rebalance callback's thread (revoking) the commit must be made there and then.
        if (Thread.CurrentThread == _thread) Commit(commits);
        else await Task.Run(() => Commit(commits), cancellationToken).ConfigureAwait(false);
    }

    private void Commit(List<TopicPartitionOffset> commits)
    {
        try
        {
            _consumer.Commit(commits);
        }
        catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_NoOffset)
        {
            return;
        }
        catch (TopicPartitionOffsetException e)
        {
            throw new HeraldException($"Kafka commit of group '{_spec.Group}' failed: " +
                string.Join(", ", e.Results.Where(r => r.Error.IsError).Select(r => $"{r.Topic}/{r.Partition.Value}: {r.Error.Code} ({r.Error.Reason})")), e);
        }
        foreach (var c in commits) _committed[KafkaTransport.ToHerald(c.TopicPartition)] = c.Offset.Value;
    }

    public long? GetCommitted(HeraldPartition partition)
    {
        if (_committed.TryGetValue(partition, out var offset)) return offset;
        var found = _consumer.Committed([KafkaTransport.ToKafka(partition)], _transport.Options.RequestTimeout);
        return found.Count == 1 && found[0].Offset.Value >= 0 ? found[0].Offset.Value : null;
    }

    public void Pause(IEnumerable<HeraldPartition> partitions) => Flow(partitions, pause: true);

    public void Resume(IEnumerable<HeraldPartition> partitions) => Flow(partitions, pause: false);

    private void Flow(IEnumerable<HeraldPartition> partitions, bool pause)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var owned = _assignment;
        var which = partitions.Where(owned.Contains).Select(KafkaTransport.ToKafka).ToList();
        if (which.Count == 0) return;
        try
        {
            if (pause) _consumer.Pause(which);
            else _consumer.Resume(which);
        }
        catch (KafkaException)
        {
            // A partition revoked meanwhile: nothing to pause or resume.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _closing = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.Run(() => _thread.Join()).ConfigureAwait(false);
        try
        {
            _consumer.Close(); // leaves the group now rather than after the session timeout
        }
        catch (KafkaException)
        {
            // Leaving failed (the cluster away): the group notices at its session timeout.
        }
        finally
        {
            _consumer.Dispose();
            _stop.Dispose();
            _requests.Dispose();
        }
    }
}
