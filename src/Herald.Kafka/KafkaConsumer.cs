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
internal sealed partial class KafkaConsumer : ITransportConsumer
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
