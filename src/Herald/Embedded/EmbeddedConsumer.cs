using Herald.Log;
using Herald.Log.Groups;
using Herald.Transport;

namespace Herald.Embedded;

/// <summary>A consumer group member over the embedded log.</summary>
internal sealed class EmbeddedConsumer : ITransportConsumer
{
    private readonly EmbeddedTransport _transport;
    private readonly GroupMember _member;
    private readonly Dictionary<TopicPartition, Cursor> _owned = [];
    private readonly List<Cursor> _order = [];
    private const int ReadBytes = 64 * 1024;
    private int _generation = -1;
    private int _next;
    private bool _disposed;

    private sealed class Cursor(TopicPartition partition, LogPartition log, long offset)
    {
        public readonly TopicPartition Partition = partition;
        public readonly LogPartition Log = log;
        public long Offset = offset;                 // the next offset to read from the log
        public readonly List<LogRecord> Decoded = [];
        public int Taken;                            // how many of Decoded were handed out
        public ReadLease? Lease;                     // the pooled read Decoded points into
        public bool Paused;
        public bool Announced; // fetched only once OnAssigned has run for it

        /// <summary>Lets go of the decoded records (those handed out keep their own references).</summary>
        public void Drop()
        {
            Decoded.Clear();
            Taken = 0;
            Lease?.Release();
            Lease = null;
        }
    }

    /// <summary>One pooled read: the cursor holds a reference while it hands out its records, and
    /// each record handed out holds one until the pipeline finishes it.</summary>
    internal sealed class ReadLease(System.Buffers.ArrayPool<byte> pool, byte[] array) : RecordLease
    {
        private byte[]? _array = array;
        private int _refs = 1;

        public void AddRefs(int count) => Interlocked.Add(ref _refs, count);

        public override void Release()
        {
            var left = Interlocked.Decrement(ref _refs);
            if (left > 0) return;
            if (left < 0) throw new InvalidOperationException("a pooled read was released more often than it was referenced");
            if (Interlocked.Exchange(ref _array, null) is { } a) pool.Return(a);
        }
    }

    public EmbeddedConsumer(EmbeddedTransport transport, ConsumerSpec spec)
    {
        _transport = transport;
        Spec = spec;
        _member = transport.Log.Groups.Join(spec.Group, spec.Topics);
    }

    public ConsumerSpec Spec { get; }

    public IReadOnlyCollection<TopicPartition> Assignment => _owned.Keys;

    public async ValueTask FetchAsync(List<TransportRecord> into, int maxRecords, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(into);
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (generation, changed) = _member.State;
            if (generation != _generation)
            {
                await RebalanceAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (TakeAvailable(into, maxRecords, maxBytes)) return;
            await WaitForDataAsync(changed, cancellationToken).ConfigureAwait(false);
        }
    }

    private bool TakeAvailable(List<TransportRecord> into, int maxRecords, long maxBytes)
    {
        var count = _order.Count;
        long bytes = 0;
        var added = 0;
        for (var i = 0; i < count && added < maxRecords && bytes < maxBytes; i++)
        {
            var cursor = _order[(_next + i) % count];
            if (cursor.Paused || !cursor.Announced) continue;
            if (cursor.Taken == cursor.Decoded.Count)
            {
                if (cursor.Log.EndOffset <= cursor.Offset) continue;
                cursor.Drop();
                var offset = Math.Max(cursor.Offset, cursor.Log.StartOffset);
                // Reads of at most 64 KiB (whole batches; one larger batch comes whole) into pooled
                // buffers that go back when the last record read into one is finished (pipeline
                // benchmark: a new buffer per read was a third of all allocation, and what
                // prefetch held of them survived into generation 1).
                LogReadResult read;
                try
                {
                    read = cursor.Log.Read(offset, (int)Math.Clamp(maxBytes - bytes, 4096, ReadBytes), _transport.ReadPool);
                }
                catch (Exception) when (added > 0)
                {
                    // Records of other partitions are already taken from their cursors: hand them
                    // out. This cursor has not moved, so a later fetch meets the error again.
                    break;
                }
                catch (Exception)
                {
                    // The next fetch starts after the failing partition: a damaged partition must
                    // not starve the healthy ones (fetches alternate between their records and the error).
                    _next = (_next + i + 1) % count;
                    throw;
                }
                if (read.IsEmpty)
                {
                    cursor.Offset = Math.Max(cursor.Offset, read.NextOffset); // past a gap compaction left
                    continue;
                }
                if (read.RentedArray is { } rented) cursor.Lease = new ReadLease(_transport.ReadPool, rented);
                read.DecodeRecords(cursor.Decoded);
                cursor.Offset = read.NextOffset;
            }
            var topic = cursor.Partition.Topic;
            var partition = cursor.Partition.Partition;
            var lease = cursor.Lease;
            var handedOut = 0;
            while (cursor.Taken < cursor.Decoded.Count && added < maxRecords && bytes < maxBytes)
            {
                var r = cursor.Decoded[cursor.Taken++];
                var record = new TransportRecord(topic, partition, r.Offset, r.TimestampMs, r.Key, r.Value, r.Headers) { Lease = lease };
                into.Add(record);
                bytes += record.Size;
                added++;
                handedOut++;
            }
            lease?.AddRefs(handedOut); // once per run: the dispatcher releases them on another core
            if (cursor.Taken == cursor.Decoded.Count) cursor.Drop();
        }
        _next = count == 0 ? 0 : (_next + 1) % count;
        return added > 0;
    }

    private readonly List<Task> _waits = [];

    /// <summary>Waits for a write to any owned partition, a group change or cancellation. The
    /// partitions' signals are shared and never cancelled, so a quiet partition costs no exception
    /// (pipeline benchmark: cancelled per-partition waits were 9 % of all CPU time).</summary>
    private async Task WaitForDataAsync(Task changed, CancellationToken cancellationToken)
    {
        foreach (var cursor in _order)
            if (!cursor.Paused && cursor.Taken < cursor.Decoded.Count) return; // decoded records left over from a fetch at its limit
        var waits = _waits;
        waits.Clear();
        waits.Add(changed);
        foreach (var cursor in _order)
        {
            if (cursor.Paused || !cursor.Announced) continue;
            var signal = cursor.Log.DataSignal(cursor.Offset);
            if (signal.IsCompleted)
            {
                waits.Clear();
                if (signal.IsFaulted) await signal.ConfigureAwait(false);
                return;
            }
            waits.Add(signal);
        }
        TaskCompletionSource? cancelled = null;
        CancellationTokenRegistration registration = default;
        if (cancellationToken.CanBeCanceled)
        {
            cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            registration = cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetResult(), cancelled);
            waits.Add(cancelled.Task);
        }
        try
        {
            var done = await Task.WhenAny(waits).ConfigureAwait(false);
            if (done.IsFaulted) await done.ConfigureAwait(false);
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
            waits.Clear();
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async Task RebalanceAsync(CancellationToken cancellationToken)
    {
        var (generation, assigned) = _member.Assignment(_transport.GetPartitionCount);
        var target = assigned.ConvertAll(tp => new TopicPartition(tp.Topic, tp.Partition));
        var revoked = new List<TopicPartition>();
        foreach (var tp in _owned.Keys)
            if (!target.Contains(tp)) revoked.Add(tp);
        if (revoked.Count > 0)
        {
            if (Spec.OnRevoking is { } onRevoking) await onRevoking(revoked, cancellationToken).ConfigureAwait(false);
            foreach (var tp in revoked)
            {
                _owned[tp].Drop();
                _order.Remove(_owned[tp]);
            }
            foreach (var tp in revoked) _owned.Remove(tp);
            _member.Release(revoked.ConvertAll(tp => (tp.Topic, tp.Partition)));
        }
        foreach (var tp in target)
        {
            if (_owned.ContainsKey(tp)) continue;
            // The previous owner may still be draining: wait for it to release, or for a newer generation.
            while (!_member.TryClaim(tp.Topic, tp.Partition))
            {
                var (current, changed) = _member.State;
                if (current != generation) return;
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            var log = _transport.Partition(tp.Topic, tp.Partition);
            var cursor = new Cursor(tp, log, await StartOffsetAsync(tp, log, cancellationToken).ConfigureAwait(false));
            _owned[tp] = cursor;
            _order.Add(cursor);
        }
        // Partitions claimed in an earlier, interrupted attempt are announced now too; the
        // generation is only taken once every claimed partition has been announced.
        var added = new List<TopicPartition>();
        foreach (var cursor in _order)
            if (!cursor.Announced) added.Add(cursor.Partition);
        // The first assignment is reported even when empty: the member is in the group now.
        if ((added.Count > 0 || _generation < 0) && Spec.OnAssigned is { } onAssigned) await onAssigned(added, cancellationToken).ConfigureAwait(false);
        foreach (var cursor in _order) cursor.Announced = true;
        _generation = generation;
    }

    private async Task<long> StartOffsetAsync(TopicPartition tp, LogPartition log, CancellationToken cancellationToken)
    {
        if (GetCommitted(tp) is { } committed) return Math.Clamp(committed, log.StartOffset, log.EndOffset);
        if (Spec.StartFrom == StartFrom.Earliest || Spec.AlwaysFromEarliest?.Contains(tp.Topic) == true) return log.StartOffset;
        // A new group starting at the latest record commits that position at once, so a restart
        // before its first commit does not skip what was published in between.
        var end = log.EndOffset;
        await _transport.Log.Offsets.CommitAsync(Spec.Group, tp.Topic, tp.Partition, end, cancellationToken).ConfigureAwait(false);
        return end;
    }

    public async ValueTask CommitAsync(IReadOnlyList<KeyValuePair<TopicPartition, long>> offsets, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        if (offsets.Count == 0) return;
        var list = new KeyValuePair<(string, int), long>[offsets.Count];
        for (var i = 0; i < offsets.Count; i++) list[i] = new((offsets[i].Key.Topic, offsets[i].Key.Partition), offsets[i].Value);
        await _transport.Log.Offsets.CommitAsync(Spec.Group, list, cancellationToken).ConfigureAwait(false);
    }

    public long? GetCommitted(TopicPartition partition) =>
        _transport.Log.Offsets.GetCommitted(Spec.Group, partition.Topic, partition.Partition);

    public void Pause(IEnumerable<TopicPartition> partitions) => SetPaused(partitions, true);

    public void Resume(IEnumerable<TopicPartition> partitions) => SetPaused(partitions, false);

    private void SetPaused(IEnumerable<TopicPartition> partitions, bool paused)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        foreach (var tp in partitions)
            if (_owned.TryGetValue(tp, out var cursor)) cursor.Paused = paused;
    }

    public ValueTask DisposeAsync()
    {
        if (_disposed) return ValueTask.CompletedTask;
        _disposed = true;
        foreach (var cursor in _order) cursor.Drop();
        _member.Dispose();
        _owned.Clear();
        _order.Clear();
        return ValueTask.CompletedTask;
    }
}
