using System.Collections.Concurrent;
using Confluent.Kafka;
using Herald.Transport;
using HeraldPartition = Herald.Transport.TopicPartition;
using KafkaPartition = Confluent.Kafka.TopicPartition;

namespace Herald.Kafka;

/// <summary>
/// A member of a Kafka consumer group.
/// <list type="bullet">
/// <item>Each event topic has a librdkafka consumer of its own in the group (a lane), so each
/// topic's partitions are balanced over the members on their own. With one consumer for all
/// topics the sticky assignor balances partition counts only, and a second member could be given
/// one topic's partitions and none of another's.</item>
/// <item>Follower topics (retry topics) are not in the group's assignment at all: a member reads
/// partition <c>p</c> of a follower exactly while it owns partition <c>p</c> of its leader, through
/// one more consumer that assigns them itself. Their offsets are committed under the group
/// <c>&lt;group&gt;.retry</c>, which has no members (Kafka accepts commits without a generation only
/// from a group nobody has joined).</item>
/// <item>All of them are driven from one thread: fetches are handed to it, and the group's
/// rebalance callbacks run there, where Herald finishes (or abandons) the revoked partitions'
/// work and commits what finished before they go. Between fetches (the pipeline's budgets full)
/// the thread keeps polling, so rebalances go on and the member is not dropped for not polling;
/// records that arrive meanwhile are held for the next fetch, up to <see cref="StashLimit"/>,
/// and past that the member's partitions are paused until it is taken.</item>
/// </list>
/// Commits are manual and only of offsets Herald hands in.
/// </summary>
internal sealed class KafkaConsumer : ITransportConsumer
{
    internal const int StashLimit = 1024;
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan SliceLength = TimeSpan.FromMilliseconds(10);

    private readonly KafkaTransport _transport;
    private readonly ConsumerSpec _spec;
    private readonly IConsumer<byte[]?, byte[]?>[] _lanes;
    private readonly IConsumer<byte[]?, byte[]?>? _follower;
    private readonly IConsumer<byte[]?, byte[]?>[] _polled;
    private readonly Dictionary<string, IConsumer<byte[]?, byte[]?>> _consumerOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _followersOf = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private readonly SemaphoreSlim _requests = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<HeraldPartition, long> _committed = new();
    private readonly HashSet<HeraldPartition> _lost = [];
    private readonly Queue<ConsumeResult<byte[]?, byte[]?>> _stash = new();
    private readonly Lock _flow = new();
    private readonly HashSet<HeraldPartition> _pausedByPipeline = [];
    private readonly HashSet<HeraldPartition> _pausedForStash = [];
    private volatile HeraldPartition[] _assignment = [];
    private Exception? _pollError;
    private Fetch? _fetch;
    private int _nextLane;
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
        public long Bytes;
    }

    public KafkaConsumer(KafkaTransport transport, ConsumerSpec spec)
    {
        _transport = transport;
        _spec = spec;
        var reset = spec.StartFrom == StartFrom.Latest ? AutoOffsetReset.Latest : AutoOffsetReset.Earliest;
        var topics = spec.Topics.Distinct(StringComparer.Ordinal).ToList();
        if (topics.Count == 0) throw new ArgumentException("a consumer needs at least one topic", nameof(spec));
        var leaders = new List<string>();
        foreach (var topic in topics)
        {
            if (spec.Followers?.TryGetValue(topic, out var leader) == true && topics.Contains(leader))
            {
                if (!_followersOf.TryGetValue(leader, out var list)) _followersOf[leader] = list = [];
                list.Add(topic);
            }
            else leaders.Add(topic);
        }
        var lanes = new List<IConsumer<byte[]?, byte[]?>>();
        try
        {
            foreach (var topic in leaders)
            {
                IConsumer<byte[]?, byte[]?>? lane = null;
                lane = KafkaTransport.Build(() => new ConsumerBuilder<byte[]?, byte[]?>(transport.Options.ConsumerConfig(spec.Group, reset))
                    .SetPartitionsAssignedHandler((_, partitions) => Assigned(lane!, partitions))
                    .SetPartitionsRevokedHandler((_, partitions) => Revoked(partitions, lost: false))
                    .SetPartitionsLostHandler((_, partitions) => Revoked(partitions, lost: true))
                    .Build(), "consumer");
                lanes.Add(lane);
                _consumerOf[topic] = lane;
                lane.Subscribe(topic);
            }
            if (_followersOf.Count > 0)
            {
                _follower = KafkaTransport.Build(() => new ConsumerBuilder<byte[]?, byte[]?>(transport.Options.ConsumerConfig(FollowerGroup(spec.Group), AutoOffsetReset.Earliest)).Build(), "consumer");
                foreach (var follower in _followersOf.Values.SelectMany(f => f)) _consumerOf[follower] = _follower;
            }
        }
        catch
        {
            foreach (var lane in lanes) lane.Dispose();
            _follower?.Dispose();
            throw;
        }
        _lanes = [.. lanes];
        _polled = _follower is null ? _lanes : [.. _lanes, _follower];
        _thread = new Thread(Run) { IsBackground = true, Name = $"herald-kafka-{spec.Group}" };
        _thread.Start();
    }

    /// <summary>The group under which a group's follower (retry) partitions commit their offsets.</summary>
    internal static string FollowerGroup(string group) => group + ".retry";

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

    /// <summary>The consumer's own thread: serves one fetch at a time, and polls between them.</summary>
    private void Run()
    {
        while (true)
        {
            bool requested;
            try
            {
                requested = _requests.Wait(IdlePoll, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!requested)
            {
                KeepPolling();
                continue;
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

    /// <summary>No fetch asked for: poll anyway (rebalance callbacks run inside polls), holding
    /// what arrives for the next fetch. Once <see cref="StashLimit"/> records are held, every
    /// assigned partition is paused (those assigned later too), so polls go on and bring no more.
    /// A failure is reported by the next fetch.</summary>
    private void KeepPolling()
    {
        try
        {
            foreach (var consumer in _polled)
            {
                while (Consume(consumer, Wait.No, _stop.Token) is { } result)
                {
                    _stash.Enqueue(result);
                    if (_stash.Count >= StashLimit) PauseForStash();
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _pollError = e;
        }
    }

    private void Serve(Fetch fetch)
    {
        if (_pollError is { } error)
        {
            _pollError = null;
            throw error;
        }
        using var either = CancellationTokenSource.CreateLinkedTokenSource(fetch.Cancellation, _stop.Token);
        var token = either.Token;
        // What came between fetches first: it precedes anything still to be consumed.
        while (_stash.TryDequeue(out var held))
            if (!Add(fetch, held)) return;
        ResumeAfterStash();
        if (fetch.Into.Count > 0)
        {
            foreach (var consumer in _polled)
                if (!Drain(consumer, fetch, token)) return;
            return;
        }
        if (_polled.Length == 1)
        {
            // One consumer: the first consume waits (rebalances run inside it), the rest take what is here.
            var first = Consume(_polled[0], Wait.UntilRecord, token);
            if (first is not null && Add(fetch, first)) Drain(_polled[0], fetch, token);
            return;
        }
        // Several: librdkafka cannot wait on several consumers at once, so they are polled in
        // turn, a short slice each while all are idle.
        while (true)
        {
            var start = _nextLane;
            _nextLane = (_nextLane + 1) % _polled.Length;
            for (var i = 0; i < _polled.Length; i++)
                if (!Drain(_polled[(start + i) % _polled.Length], fetch, token)) return;
            if (fetch.Into.Count > 0) return;
            for (var i = 0; i < _polled.Length; i++)
            {
                var consumer = _polled[(start + i) % _polled.Length];
                if (Consume(consumer, Wait.Slice, token) is { } result)
                {
                    if (Add(fetch, result)) Drain(consumer, fetch, token);
                    return;
                }
            }
        }
    }

    /// <summary>Adds a record; false when the fetch is full.</summary>
    private static bool Add(Fetch fetch, ConsumeResult<byte[]?, byte[]?> result)
    {
        var record = KafkaTransport.ToRecord(result);
        fetch.Into.Add(record);
        fetch.Bytes += record.Size;
        return fetch.Into.Count < fetch.MaxRecords && fetch.Bytes < fetch.MaxBytes;
    }

    /// <summary>Takes what a consumer already has; false when the fetch is full.</summary>
    private bool Drain(IConsumer<byte[]?, byte[]?> consumer, Fetch fetch, CancellationToken token)
    {
        while (Consume(consumer, Wait.No, token) is { } result)
            if (!Add(fetch, result)) return false;
        return true;
    }

    private enum Wait { No, Slice, UntilRecord }

    private ConsumeResult<byte[]?, byte[]?>? Consume(IConsumer<byte[]?, byte[]?> consumer, Wait wait, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Only a consume that waits is cancelled: once a fetch holds records it returns them
            // (they have left librdkafka, and the caller takes a cancelled fetch for an empty one).
            if (wait != Wait.No) cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var result = wait switch
                {
                    Wait.UntilRecord => consumer.Consume(cancellationToken),
                    Wait.Slice => consumer.Consume(SliceLength),
                    _ => consumer.Consume(TimeSpan.Zero),
                };
                if (result is null || result.IsPartitionEOF)
                {
                    if (wait != Wait.UntilRecord) return null;
                    continue;
                }
                return result;
            }
            catch (ConsumeException e) when (!e.Error.IsFatal && e.Error.Code is ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic or ErrorCode.Local_UnknownPartition)
            {
                // A subscribed topic not there yet: wait for it rather than fail the fetch.
                if (wait == Wait.No) return null;
                cancellationToken.WaitHandle.WaitOne(wait == Wait.Slice ? SliceLength : TimeSpan.FromMilliseconds(100));
                if (wait == Wait.Slice) return null;
            }
            catch (ConsumeException e)
            {
                throw new HeraldException($"Kafka consumer of group '{_spec.Group}' failed: {e.Error.Code} ({e.Error.Reason})", e);
            }
        }
    }

    /// <summary>The group gave this lane partitions. Nothing may escape a rebalance callback
    /// (Confluent.Kafka would then unassign the lane's every partition behind Herald's back), so
    /// the pipeline's setup of the new partitions is tried until it succeeds or the member stops,
    /// and a failure to read positions falls back to the group's reset.</summary>
    private List<TopicPartitionOffset> Assigned(IConsumer<byte[]?, byte[]?> lane, List<KafkaPartition> partitions)
    {
        var given = new List<HeraldPartition>();
        var positions = Positions(lane, partitions, given);
        if (_follower is not null)
        {
            var followers = new List<KafkaPartition>();
            foreach (var tp in partitions)
                if (_followersOf.TryGetValue(tp.Topic, out var topics))
                    foreach (var topic in topics) followers.Add(new KafkaPartition(topic, tp.Partition));
            if (followers.Count > 0)
            {
                try
                {
                    _follower.IncrementalAssign(Positions(_follower, followers, given));
                }
                catch (KafkaException e)
                {
                    _pollError = new HeraldException($"Kafka consumer of group '{_spec.Group}' could not take the retry partitions of its new partitions: {e.Error.Code} ({e.Error.Reason})", e);
                }
            }
        }
        _assignment = [.. _assignment.Union(given)];
        if (_spec.OnAssigned is { } onAssigned && (given.Count > 0 || !_joined))
        {
            var delay = TimeSpan.FromMilliseconds(100);
            while (!_closing && !_stop.IsCancellationRequested)
            {
                try
                {
                    onAssigned(given, _stop.Token).AsTask().GetAwaiter().GetResult();
                    _pollError = null; // what failed before this has passed
                    break;
                }
                catch (OperationCanceledException)
                {
                    break; // the subscription is stopping
                }
                catch (Exception e)
                {
                    // Reading the new partitions' state failed (a retry or dead-letter topic
                    // away): their records may not be handled before it is known. The next fetch
                    // reports the error; this waits and tries again.
                    _pollError = e;
                    _stop.Token.WaitHandle.WaitOne(delay);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                }
            }
        }
        _joined = true;
        return positions;
    }

    /// <summary>Where to start reading each partition: its committed offset, else as the group
    /// starts (retry topics from their first record, whatever the group's reset says). "Latest" is
    /// the end of the partition now, before the pipeline hears of the partition, so that nothing
    /// published after the member is ready is skipped.</summary>
    private List<TopicPartitionOffset> Positions(IConsumer<byte[]?, byte[]?> consumer, List<KafkaPartition> partitions, List<HeraldPartition> given)
    {
        var positions = new List<TopicPartitionOffset>(partitions.Count);
        if (partitions.Count == 0) return positions;
        List<TopicPartitionOffset> committed;
        try
        {
            committed = consumer.Committed(partitions, _transport.Options.RequestTimeout);
        }
        catch (KafkaException)
        {
            // Unknown now (the coordinator away): left to librdkafka, which fetches the committed
            // offsets itself when it starts the partitions, and applies the reset without one.
            foreach (var tp in partitions)
            {
                var h = KafkaTransport.ToHerald(tp);
                given.Add(h);
                lock (_lost) _lost.Remove(h);
                _committed.TryRemove(h, out _);
                positions.Add(new TopicPartitionOffset(tp, Offset.Unset));
            }
            return positions;
        }
        foreach (var c in committed)
        {
            var tp = KafkaTransport.ToHerald(c.TopicPartition);
            given.Add(tp);
            lock (_lost) _lost.Remove(tp);
            if (c.Offset.Value >= 0)
            {
                _committed[tp] = c.Offset.Value;
                positions.Add(new TopicPartitionOffset(c.TopicPartition, c.Offset));
                continue;
            }
            _committed.TryRemove(tp, out _);
            var earliest = _spec.AlwaysFromEarliest?.Contains(tp.Topic) == true || _spec.StartFrom != StartFrom.Latest;
            var start = earliest ? Offset.Beginning : Offset.End;
            if (!earliest)
            {
                try
                {
                    start = consumer.QueryWatermarkOffsets(c.TopicPartition, _transport.Options.RequestTimeout).High;
                }
                catch (KafkaException)
                {
                    // Left to librdkafka: the end when it starts the partition.
                }
            }
            positions.Add(new TopicPartitionOffset(c.TopicPartition, start));
        }
        return positions;
    }

    private void Revoked(List<TopicPartitionOffset> partitions, bool lost)
    {
        var taken = partitions.ConvertAll(p => KafkaTransport.ToHerald(p.TopicPartition));
        var followers = new List<KafkaPartition>();
        foreach (var tp in partitions)
            if (_followersOf.TryGetValue(tp.Topic, out var topics))
                foreach (var topic in topics)
                {
                    followers.Add(new KafkaPartition(topic, tp.Partition));
                    taken.Add(new HeraldPartition(topic, tp.Partition.Value));
                }
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
        catch (Exception e)
        {
            // The subscription is stopping (its drain goes on and commits what finishes) or its
            // revoke failed: the partitions go all the same. Nothing may escape a rebalance
            // callback: Confluent.Kafka would unassign the lane's every partition.
            if (!_stop.IsCancellationRequested && e is not OperationCanceledException) _pollError = e;
        }
        finally
        {
            // A pause outlives an unassignment in librdkafka: resume what was paused, so that the
            // partitions start unpaused when they come back (the pipeline counts on it).
            var gone = taken.ToHashSet();
            lock (_flow)
            {
                // No longer owned before they are resumed: a pause from the pipeline now would
                // outlive the unassignment.
                _assignment = [.. _assignment.Except(gone)];
                var paused = gone.Where(tp => _pausedByPipeline.Contains(tp) || _pausedForStash.Contains(tp)).ToList();
                Flow(paused, pause: false);
                _pausedByPipeline.ExceptWith(gone);
                _pausedForStash.ExceptWith(gone);
            }
            if (followers.Count > 0)
            {
                try
                {
                    _follower!.IncrementalUnassign(followers);
                }
                catch (KafkaException)
                {
                    // Not assigned (a follower's assignment failed with its leader's): nothing to take back.
                }
            }
            foreach (var tp in taken) _committed.TryRemove(tp, out _);
            // Held records of partitions now gone: the next owner reads them again.
            if (_stash.Count > 0)
            {
                var kept = _stash.Where(r => !gone.Contains(new HeraldPartition(r.Topic, r.Partition.Value))).ToList();
                _stash.Clear();
                foreach (var r in kept) _stash.Enqueue(r);
            }
        }
    }

    public async ValueTask CommitAsync(IReadOnlyList<KeyValuePair<HeraldPartition, long>> offsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        var commits = new List<TopicPartitionOffset>(offsets.Count);
        var owned = _assignment;
        lock (_lost)
        {
            // Not of partitions lost or already handed over: their next owner commits them now
            // (and the retry group, having no members, would not refuse a late commit).
            foreach (var (tp, offset) in offsets)
                if (!_lost.Contains(tp) && owned.Contains(tp)) commits.Add(new TopicPartitionOffset(KafkaTransport.ToKafka(tp), new Offset(offset)));
        }
        if (commits.Count == 0) return;
        // On the rebalance callback's thread (revoking) the commit must be made there and then.
        if (Thread.CurrentThread == _thread) Commit(commits);
        else await Task.Run(() => Commit(commits), cancellationToken).ConfigureAwait(false);
    }

    private IConsumer<byte[]?, byte[]?> ConsumerOf(string topic) =>
        _consumerOf.TryGetValue(topic, out var consumer) ? consumer : throw new ArgumentException($"topic '{topic}' is not one of this consumer's ({string.Join(", ", _consumerOf.Keys)})", nameof(topic));

    private void Commit(List<TopicPartitionOffset> commits)
    {
        foreach (var perConsumer in commits.GroupBy(c => ConsumerOf(c.Topic)))
        {
            try
            {
                perConsumer.Key.Commit(perConsumer);
            }
            catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_NoOffset)
            {
                continue;
            }
            catch (TopicPartitionOffsetException e)
            {
                throw new HeraldException($"Kafka commit of group '{_spec.Group}' failed: " +
                    string.Join(", ", e.Results.Where(r => r.Error.IsError).Select(r => $"{r.Topic}/{r.Partition.Value}: {r.Error.Code} ({r.Error.Reason})")), e);
            }
            foreach (var c in perConsumer) _committed[KafkaTransport.ToHerald(c.TopicPartition)] = c.Offset.Value;
        }
    }

    public long? GetCommitted(HeraldPartition partition)
    {
        if (_committed.TryGetValue(partition, out var offset)) return offset;
        var found = ConsumerOf(partition.Topic).Committed([KafkaTransport.ToKafka(partition)], _transport.Options.RequestTimeout);
        return found.Count == 1 && found[0].Offset.Value >= 0 ? found[0].Offset.Value : null;
    }

    public void Pause(IEnumerable<HeraldPartition> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        lock (_flow)
        {
            var owned = _assignment;
            var which = partitions.Where(owned.Contains).ToList();
            _pausedByPipeline.UnionWith(which);
            Flow(which, pause: true);
        }
    }

    public void Resume(IEnumerable<HeraldPartition> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        lock (_flow)
        {
            var owned = _assignment;
            var which = partitions.Where(owned.Contains).ToList();
            _pausedByPipeline.ExceptWith(which);
            Flow(which.Where(tp => !_pausedForStash.Contains(tp)), pause: false);
        }
    }

    /// <summary>The held records reached their limit: every partition pauses until they are taken.</summary>
    private void PauseForStash()
    {
        lock (_flow)
        {
            var which = _assignment.Where(_pausedForStash.Add).ToList();
            Flow(which, pause: true);
        }
    }

    private void ResumeAfterStash()
    {
        lock (_flow)
        {
            if (_pausedForStash.Count == 0) return;
            var owned = _assignment;
            var which = _pausedForStash.Where(tp => owned.Contains(tp) && !_pausedByPipeline.Contains(tp)).ToList();
            _pausedForStash.Clear();
            Flow(which, pause: false);
        }
    }

    private void Flow(IEnumerable<HeraldPartition> partitions, bool pause)
    {
        foreach (var perConsumer in partitions.GroupBy(p => ConsumerOf(p.Topic)))
        {
            try
            {
                var which = perConsumer.Select(KafkaTransport.ToKafka).ToList();
                if (pause) perConsumer.Key.Pause(which);
                else perConsumer.Key.Resume(which);
            }
            catch (KafkaException)
            {
                // A partition revoked meanwhile: nothing to pause or resume.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _closing = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.Run(() => _thread.Join()).ConfigureAwait(false);
        // Leaders first: their revocations take the followers back.
        foreach (var consumer in _polled)
        {
            try
            {
                consumer.Close(); // leaves the group now rather than after the session timeout
            }
            catch (KafkaException)
            {
                // Leaving failed (the cluster away): the group notices at its session timeout.
            }
            finally
            {
                consumer.Dispose();
            }
        }
        _stop.Dispose();
        _requests.Dispose();
    }
}
