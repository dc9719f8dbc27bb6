using Herald.Log.Batches;
using Herald.Log.Partitions;
using Herald.Log.Segments;

namespace Herald.Log;

public sealed partial class LogPartition
{
    private readonly RecordBatchBuilder _builder = new();
    private byte[] _buffer = [];
    private int _bufferUsed;
    private long _bufferedNextOffset;

    /// <summary>The size at which the writer closes a batch and starts the next one.</summary>
    internal const int TargetBatchBytes = 64 * 1024;  // the offset after the last batch in the buffer
    private long _groupFirstNewBase = long.MaxValue; // base offset of the first segment the current group created
    private long _unsyncedBytes;       // AckOnWrite: written since the last fsync
    private long _lastSyncTicks;
    private Exception? _fault;         // a failed write or fsync: reopen before the next append
    private readonly List<Segment> _touched = new(2);

    /// <summary>The writer thread: takes everything pending, encodes it into batches, writes them
    /// with one write per buffer, fsyncs once, then acknowledges all of it (group commit).</summary>
    private void WriterLoop()
    {
        var group = new List<AppendRequest>(256);
        try
        {
            _buffer = new byte[Math.Max(1 << 20, _options.MaxBatchBytes * 2)];
            _lastSyncTicks = _time.GetTimestamp();
            var lastGroup = 0;
            while (true)
            {
                if (lastGroup >= _gatherFrom && _gatherTicks > 0) GatherAppends(lastGroup);
                TaskCompletionSource? freed;
                lock (_gate)
                {
                    while (_pending.Count == 0 && !_closing)
                    {
                        var wait = FlushWaitMilliseconds();
                        if (wait == 0) break;
                        _writerWaiting = true;
                        Monitor.Wait(_gate, wait);
                        _writerWaiting = false;
                    }
                    if (_pending.Count == 0 && _closing) break;
                    (_pending, group) = (group, _pending);
                    _pendingBytes = 0;
                    _pendingCount = 0;
                    freed = _spaceFreed;
                    _spaceFreed = null;
                }
                freed?.TrySetResult();
                lastGroup = group.Count;
                if (group.Count > 0) WriteGroup(group);
                else SyncIfDue(force: true);
                group.Clear();
            }
            if (_unsyncedBytes > 0) SyncIfDue(force: true);
        }
        catch (Exception e)
        {
            // Never expected: fail whatever is queued rather than leave appenders waiting.
            lock (_gate)
            {
                _closing = true;
                _spaceFreed?.TrySetResult();
            }
            CompleteGroup(group, e);
            CompleteGroup(_pending, e);
        }
        finally
        {
            _writerExited.TrySetResult();
        }
    }

    private readonly long _gatherTicks; // EmbeddedLogOptions.GroupCommitDelay in Stopwatch ticks
    private readonly int _gatherFrom;   // EmbeddedLogOptions.GroupCommitDelayMinAppends
    private static readonly long GatherIdleTicks = System.Diagnostics.Stopwatch.Frequency / 50_000; // 20 µs

    /// <summary>How gathering rounds ended: twice the last group waiting, no append for 20 µs, or
    /// the delay over (for tests and diagnostics).</summary>
    internal (long Filled, long Idle, long TimedOut) GatherEnds => (Volatile.Read(ref _gatherFilled), Volatile.Read(ref _gatherIdle), Volatile.Read(ref _gatherTimedOut));
    private long _gatherFilled, _gatherIdle, _gatherTimedOut;

    /// <summary>Group commit delay (PostgreSQL's commit_delay, made adaptive): after a large group,
    /// lets appends gather while they keep coming, giving the CPU to the appenders meanwhile.
    /// Pipeline benchmark on 2 cores: groups of ~150 became ~3,500 and durable throughput rose by
    /// about 15 %. It stops as soon as appends stop arriving: closed-loop appenders that wait for
    /// their acknowledgements would only sit idle (log-append benchmark: a fixed 1 ms wait cost
    /// it a third of its throughput; this costs nothing measurable).</summary>
    private void GatherAppends(int lastGroup)
    {
        var target = Math.Min(2L * lastGroup, 16_384);
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var lastCount = -1;
        var lastGrowth = start;
        while (true)
        {
            // Polled without the lock, which every append takes: a stale read only ends or lengthens
            // one round of gathering by a poll (pipeline benchmark: polling under the lock made
            // appenders contend with the writer for it while it gathered).
            if (Volatile.Read(ref _closing) || Volatile.Read(ref _spaceFreed) is not null) return; // closing, or appenders wait for room: write now
            var count = Volatile.Read(ref _pendingCount);
            if (count >= target)
            {
                Interlocked.Increment(ref _gatherFilled);
                return;
            }
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (count != lastCount)
            {
                lastCount = count;
                lastGrowth = now;
            }
            else if (now - lastGrowth > GatherIdleTicks)
            {
                Interlocked.Increment(ref _gatherIdle);
                return;
            }
            if (now - start >= _gatherTicks)
            {
                Interlocked.Increment(ref _gatherTimedOut);
                return;
            }
            Thread.Yield();
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentQueue<List<AppendRequest>> _completionLists = new();

    /// <summary>Completes (or fails) a group's appends on one thread-pool item, never on the writer
    /// thread: appenders' continuations run inline there, one after another.</summary>
    private void CompleteGroup(List<AppendRequest> group, Exception? error)
    {
        if (group.Count == 0) return;
        var list = _completionLists.TryDequeue(out var reused) ? reused : new List<AppendRequest>(group.Count);
        list.AddRange(group);
        ThreadPool.UnsafeQueueUserWorkItem(static state =>
        {
            var (partition, requests, failure) = state;
            foreach (var request in requests)
            {
                if (failure is null) request.Complete(request.BaseOffset);
                else request.Fail(failure);
            }
            requests.Clear();
            if (partition._completionLists.Count < 8) partition._completionLists.Enqueue(requests);
        }, (this, list, error), preferLocal: false);
    }

    private int FlushWaitMilliseconds()
    {
        if (_options.Durability != DurabilityMode.AckOnWrite || _unsyncedBytes == 0) return Timeout.Infinite;
        var due = _options.FlushInterval - _time.GetElapsedTime(_lastSyncTicks);
        return due <= TimeSpan.Zero ? 0 : (int)Math.Ceiling(due.TotalMilliseconds);
    }

    private void WriteGroup(List<AppendRequest> group)
    {
        if (_corruption is { } corrupt)
        {
            CompleteGroup(group, corrupt);
            return;
        }
        if (_fault is not null && !TryReopen(group)) return;

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var next = Active.NextOffset;
        _groupFirstNewBase = long.MaxValue;
        _touched.Clear();
        _touched.Add(Active);
        try
        {
            foreach (var request in group)
            {
                request.BaseOffset = next;
                switch (request.Kind)
                {
                    case AppendKind.Single:
                        next = AddRecord(request.Single, next, now);
                        break;
                    case AppendKind.Many:
                        var records = request.Many!;
                        for (var i = 0; i < records.Count; i++) next = AddRecord(records[i], next, now);
                        break;
                    default:
                        next = AddRawBatch(request.RawBatch.Span, next);
                        break;
                }
                request.ReleaseOwners(); // copied into the buffer: a pooled source can be reused now
            }
            FinishBatch();
            WriteBuffer();
            if (_options.Durability == DurabilityMode.AckAfterFsync) Sync();
        }
        catch (Exception e)
        {
            Fault(e, group);
            return;
        }

        foreach (var segment in _touched) segment.CommittedSize = segment.Size;
        _groupFirstNewBase = long.MaxValue;
        Volatile.Write(ref _endOffset, next);
        CompleteGroup(group, null);
        Interlocked.Exchange(ref _dataArrived, NewSignal()).TrySetResult();
        if (_options.Durability == DurabilityMode.AckOnWrite) SyncIfDue(force: false);
    }

    private long AddRecord(in NewRecord record, long offset, long now)
    {
        var timestamp = record.TimestampMs >= 0 ? record.TimestampMs : now;
        if (_builder.IsOpen && _builder.TryAdd(record, timestamp)) return offset + 1;
        FinishBatch();
        BeginBatch(offset, timestamp, RecordBatch.HeaderSize + RecordBatchBuilder.MaxEncodedSize(record));
        if (!_builder.TryAdd(record, timestamp))
            throw new InvalidOperationException("a record did not fit an empty batch despite its size check");
        return offset + 1;
    }

    private void BeginBatch(long baseOffset, long timestamp, int needed)
    {
        if (_buffer.Length - _bufferUsed < _options.MaxBatchBytes) WriteBuffer();
        var room = RoomInSegment(needed, baseOffset);
        // Batches close at TargetBatchBytes (a larger record gets a batch of its own size): readers
        // then fetch in buffers below the large-object-heap threshold (pipeline benchmark: 1 MiB
        // batches made every consumer read a gen-2 allocation).
        var limit = Math.Min(Math.Max(needed, TargetBatchBytes), _options.MaxBatchBytes);
        _builder.Begin(_buffer, _bufferUsed, _bufferUsed + (int)Math.Min(room, limit), baseOffset, timestamp);
    }

    /// <summary>Bytes the active segment can still take, rolling to a new one first when
    /// <paramref name="needed"/> does not fit (or the segment is too old).</summary>
    private long RoomInSegment(int needed, long nextOffset)
    {
        var active = Active;
        var used = active.Size + _bufferUsed;
        var tooOld = active.FirstAppend is { } first && _time.GetUtcNow() - first >= _options.SegmentAge;
        if (used > 0 && (used + needed > _options.SegmentBytes || tooOld))
        {
            WriteBuffer();
            Roll(nextOffset);
            active = Active;
            used = 0;
        }
        return Math.Max(_options.SegmentBytes - used, needed);
    }

    private long AddRawBatch(ReadOnlySpan<byte> batch, long baseOffset)
    {
        FinishBatch();
        if (_buffer.Length - _bufferUsed < batch.Length) WriteBuffer();
        RoomInSegment(batch.Length, baseOffset);
        var dest = _buffer.AsSpan(_bufferUsed, batch.Length);
        batch.CopyTo(dest);
        RecordBatch.SetBaseOffset(dest, baseOffset);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(dest[RecordBatch.PartitionLeaderEpochOffset..], 0);
        var header = RecordBatch.ReadHeader(dest);
        OnBatchBuffered(header, batch.Length);
        return header.NextOffset;
    }

    private void FinishBatch()
    {
        if (!_builder.IsOpen) return;
        if (_builder.Count == 0) { _builder.Abandon(); return; }
        var size = _builder.Finish();
        OnBatchBuffered(RecordBatch.ReadHeader(_buffer.AsSpan(_bufferUsed)), size);
    }

    private void OnBatchBuffered(RecordBatchHeader header, int size)
    {
        var active = Active;
        active.Index.OnBatch(header.BaseOffset, active.Size + _bufferUsed, size, header.MaxTimestamp);
        active.FirstAppend ??= _time.GetUtcNow();
        _bufferUsed += size;
        _bufferedNextOffset = header.NextOffset;
    }

    private void WriteBuffer()
    {
        if (_bufferUsed == 0) return;
        var active = Active;
        var batches = _buffer.AsSpan(0, _bufferUsed);
        active.File.Write(batches, active.Size);
        active.Size += _bufferUsed;
        active.NextOffset = _bufferedNextOffset;
        _unsyncedBytes += _bufferUsed;
        _bufferUsed = 0;
    }

    private void Sync()
    {
        var active = Active;
        active.File.Sync();
        _unsyncedBytes = 0;
        _lastSyncTicks = _time.GetTimestamp();
    }

    private void SyncIfDue(bool force)
    {
        if (_unsyncedBytes == 0 || _fault is not null) return; // a failed fsync is never retried: only a reopen touches the file
        if (!force && _unsyncedBytes < _options.FlushBytes && _time.GetElapsedTime(_lastSyncTicks) < _options.FlushInterval) return;
        try
        {
            Sync();
        }
        catch (Exception e)
        {
            Fault(e, []);
        }
    }

    /// <summary>Seals the active segment (fsync, index files) and starts a new one whose file and
    /// directory entry are durable before anything refers to them.</summary>
    private void Roll(long baseOffset)
    {
        var old = Active;
        old.File.Sync();
        // Index files are not fsynced: they carry a CRC and the log length they cover, and recovery
        // rebuilds any that a crash left short, stale or damaged. Syncing them stalled the writer
        // 1.6-2.3 ms per roll (bench scenario log-latency, docs/benchmarks.md).
        old.Index.Save(_fs, old.LogPath, old.Size, old.NextOffset, sync: false);
        old.Sealed = true;
        CreateSegmentFile(baseOffset);
        var path = Path.Combine(Directory, Segment.FileName(baseOffset));
        var segment = new Segment(_fs, path, baseOffset, _fs.Open(path, create: false), new SegmentIndex(_options.IndexIntervalBytes))
        {
            NextOffset = baseOffset,
        };
        UpdateSegments(current => [.. current, segment]);
        _groupFirstNewBase = Math.Min(_groupFirstNewBase, baseOffset);
        _touched.Add(segment);
        _unsyncedBytes = 0;
    }

    /// <summary>A write or fsync failed: fail the group (nothing of it is acknowledged) and mark
    /// the partition for reopening. A failed fsync is never retried (DESIGN.md rule 6).</summary>
    private void Fault(Exception error, List<AppendRequest> group)
    {
        _builder.Abandon();
        _bufferUsed = 0;
        _unsyncedBytes = 0;
        _fault = error;
        CompleteGroup(group, Reported(error));
        TryReopen([]);
    }

    /// <summary>Drops everything not acknowledged (segments the failed group created, bytes past
    /// the last acknowledged batch) and reloads the partition through recovery. On failure the
    /// group fails and the next append tries again (say, once space is back).</summary>
    private bool TryReopen(List<AppendRequest> group)
    {
        try
        {
            // Maintenance must not swap or delete segments while the partition reloads from disk.
            _maintenance.Wait();
            try
            {
                ReloadAfterFault();
            }
            finally
            {
                _maintenance.Release();
            }
            return true;
        }
        catch (Exception e)
        {
            _fault = e;
            CompleteGroup(group, Reported(e));
            return false;
        }
    }

    private void ReloadAfterFault()
    {
        var segments = Volatile.Read(ref _segments);
        var keep = segments.Length;
        while (keep > 1 && segments[keep - 1].BaseOffset >= _groupFirstNewBase) keep--;
        var last = segments[keep - 1];
        // Every segment file past the last kept one goes, not only those the failed group added:
        // a roll that failed half way (say, its file's fsync) leaves a file it never added, and
        // recovery would make that the active segment, skipping offsets. Nothing in them was acknowledged.
        foreach (var path in System.IO.Directory.GetFiles(Directory, "*.log"))
        {
            if (!long.TryParse(Path.GetFileNameWithoutExtension(path), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out var baseOffset) || baseOffset <= last.BaseOffset)
                continue;
            _fs.Delete(path);
            _fs.Delete(SegmentIndex.IndexPath(path));
            _fs.Delete(SegmentIndex.TimeIndexPath(path));
        }
        using (var file = _fs.Open(last.LogPath, create: false))
        {
            if (file.Length > last.CommittedSize) file.SetLength(last.CommittedSize);
            file.Sync();
        }
        _fs.SyncDirectory(Directory);
        // Bytes up to the last acknowledged batch are never truncated: damage there is corruption.
        LoadSegments(truncateTornTail: true, protectedLength: last.CommittedSize);
        // Retired only now that the reloaded segments replace them: readers keep reading what
        // was acknowledged while the partition reopens, and still can if the reopen fails (say,
        // on a full disk). Nothing above touched their committed bytes.
        foreach (var s in segments) s.Retire(deleteFiles: false);
        _groupFirstNewBase = long.MaxValue;
        _unsyncedBytes = 0;
        _fault = null;
    }

    private HeraldException Reported(Exception error) =>
        error is IOException { HResult: 28 or unchecked((int)0x80070070) } // ENOSPC / ERROR_DISK_FULL
            ? new LogDiskFullException(Active.LogPath, error)
            : new LogWriteFailedException(Active.LogPath, error);
}
