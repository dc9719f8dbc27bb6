using Herald.Log.Batches;
using Herald.Log.Partitions;

namespace Herald.Log;

public sealed partial class LogPartition
{
    private readonly object _gate = new(); // Monitor.Wait/Pulse wakes the writer thread
    private List<AppendRequest> _pending = new(256);
    private int _pendingCount; // _pending.Count, for GatherAppends to poll without taking the lock
    private long _pendingBytes;
    private bool _closing;
    private bool _writerWaiting;
    private Thread? _writer;
    private TaskCompletionSource? _spaceFreed;
    private readonly TaskCompletionSource _writerExited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Appends one record; completes with its offset once it is durable per the topic's
    /// policy. Cancellation is honoured only while waiting for room (backpressure); once queued,
    /// the append completes.</summary>
    public ValueTask<long> AppendAsync(NewRecord record, CancellationToken cancellationToken = default)
    {
        if (RefuseSingle(record, out var size) is { } refused)
        {
            record.Owner?.Dispose();
            return ValueTask.FromException<long>(refused);
        }
        var request = SingleRequest(record, size);
        return Enqueue(request, cancellationToken) ? request.Task : EnqueueWhenRoomAsync(request, cancellationToken);
    }

    /// <summary>Appends one record as <see cref="AppendAsync(NewRecord, CancellationToken)"/> does,
    /// completing without its offset: an appender that only waits for durability needs no state
    /// machine of its own (pipeline benchmark).</summary>
    public ValueTask AppendIgnoringOffsetAsync(NewRecord record, CancellationToken cancellationToken = default)
    {
        if (RefuseSingle(record, out var size) is { } refused)
        {
            record.Owner?.Dispose();
            return ValueTask.FromException(refused);
        }
        var request = SingleRequest(record, size);
        return Enqueue(request, cancellationToken) ? request.UntypedTask : new ValueTask(EnqueueWhenRoomAsync(request, cancellationToken).AsTask());
    }

    private Exception? RefuseSingle(in NewRecord record, out int size)
    {
        size = RecordBatch.HeaderSize + RecordBatchBuilder.MaxEncodedSize(record);
        if (BadHeaders(record) is { } bad) return bad;
        if (size > _options.MaxBatchBytes) return TooLarge(size, "record");
        if (_options.Cleanup == CleanupPolicy.Compact && record.Key is null) return NullKeyOnCompacted();
        return null;
    }

    private AppendRequest SingleRequest(in NewRecord record, int size)
    {
        var request = AppendRequest.Rent(_requestPool);
        request.Kind = AppendKind.Single;
        request.Single = record;
        request.Bytes = size;
        return request;
    }

    /// <summary>Appends records with consecutive offsets; completes with the first one's offset.</summary>
    public ValueTask<long> AppendAsync(IReadOnlyList<NewRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (RefuseMany(records, out var total) is { } refused)
        {
            for (var i = 0; i < records.Count; i++) records[i].Owner?.Dispose();
            return ValueTask.FromException<long>(refused);
        }
        var request = AppendRequest.Rent(_requestPool);
        request.Kind = AppendKind.Many;
        request.Many = records;
        request.Bytes = (int)Math.Min(total, int.MaxValue);
        return Enqueue(request, cancellationToken) ? request.Task : EnqueueWhenRoomAsync(request, cancellationToken);
    }

    private Exception? RefuseMany(IReadOnlyList<NewRecord> records, out long total)
    {
        total = RecordBatch.HeaderSize;
        if (records.Count == 0) return new ArgumentException("at least one record is required", nameof(records));
        for (var i = 0; i < records.Count; i++)
        {
            var size = RecordBatch.HeaderSize + RecordBatchBuilder.MaxEncodedSize(records[i]);
            if (size > _options.MaxBatchBytes) return TooLarge(size, $"record {i}");
            if (BadHeaders(records[i]) is { } bad) return bad;
            if (_options.Cleanup == CleanupPolicy.Compact && records[i].Key is null) return NullKeyOnCompacted();
            total += size - RecordBatch.HeaderSize;
        }
        return total > _options.MaxPendingBytes ? TooLarge(total, $"append of {records.Count} records") : null;
    }

    /// <summary>Appends a ready-made RecordBatch v2 (as a Kafka producer sends it), stored byte for
    /// byte except its base offset, which the log assigns, and its partition leader epoch, which it
    /// sets to 0 as a Kafka broker stamps its own (the CRC covers neither). The batch is validated
    /// first; a bad one is refused with the field and byte offset at fault. Completes with the
    /// assigned base offset.</summary>
    public ValueTask<long> AppendBatchAsync(ReadOnlyMemory<byte> batch, CancellationToken cancellationToken = default)
    {
        if (batch.Length > _options.MaxBatchBytes) return ValueTask.FromException<long>(TooLarge(batch.Length, "record batch"));
        if (RecordBatch.Validate(batch.Span, _options.MaxBatchBytes) is { } error)
            return ValueTask.FromException<long>(new InvalidRecordBatchException(error.Field, error.Position, error.Reason));
        var header = RecordBatch.ReadHeader(batch.Span);
        if (header.Compression != 0)
            return ValueTask.FromException<long>(new InvalidRecordBatchException("attributes", RecordBatch.AttributesOffset,
                $"compression codec {header.Compression} is not supported by the embedded log; send uncompressed batches"));
        if (header.IsControl || (header.Attributes & RecordBatch.TransactionalFlag) != 0)
            return ValueTask.FromException<long>(new InvalidRecordBatchException("attributes", RecordBatch.AttributesOffset,
                "transactional and control batches are not supported by the embedded log"));
        if (header.RecordCount == 0 || header.LastOffsetDelta != header.RecordCount - 1)
            return ValueTask.FromException<long>(new InvalidRecordBatchException("lastOffsetDelta", RecordBatch.LastOffsetDeltaOffset,
                $"a produced batch needs consecutive offset deltas 0..{header.RecordCount - 1}, found last delta {header.LastOffsetDelta}"));
        if (_options.Cleanup == CleanupPolicy.Compact)
        {
            var records = new List<LogRecord>(header.RecordCount);
            RecordBatchRecords.Decode(batch, 0, records);
            foreach (var r in records)
                if (r.Key is null) return ValueTask.FromException<long>(NullKeyOnCompacted());
        }
        var request = AppendRequest.Rent(_requestPool);
        request.Kind = AppendKind.Raw;
        request.RawBatch = batch;
        request.Bytes = batch.Length;
        return Enqueue(request, cancellationToken) ? request.Task : EnqueueWhenRoomAsync(request, cancellationToken);
    }

    /// <summary>Headers handed over in the stored form must be well-formed: they are copied as they are.
    /// (RecordHeaders were checked when made or read; Herald's publish buffer writes well-formed ones.)</summary>
    private static ArgumentException? BadHeaders(in NewRecord record) =>
        record.Headers is IEncodedHeaders encoded and not RecordHeaders and not IWellFormedEncodedHeaders && RecordHeaders.Check(encoded.EncodedFields, encoded.Count) is { } error
            ? new ArgumentException($"encoded headers: {error}", nameof(record))
            : null;

    private RecordTooLargeException TooLarge(long size, string what) => new(Topic, Id, size, _options.MaxBatchBytes, what);

    private ArgumentException NullKeyOnCompacted() =>
        new($"topic '{Topic}' is compacted: every record needs a key", "Key");

    /// <summary>Queues the request when there is room (or it is closed: then it fails at once);
    /// false when the caller must wait for room.</summary>
    private bool Enqueue(AppendRequest request, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_closing)
            {
                request.Fail(new LogClosedException($"partition {this}"));
                return true;
            }
            if (_pendingBytes + request.Bytes <= _options.MaxPendingBytes || _pending.Count == 0)
            {
                AddPending(request);
                return true;
            }
        }
        return false;
    }

    private async ValueTask<long> EnqueueWhenRoomAsync(AppendRequest request, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_closing) { Discard(request); throw new LogClosedException($"partition {this}"); }
                if (_pendingBytes + request.Bytes <= _options.MaxPendingBytes || _pending.Count == 0)
                {
                    AddPending(request);
                    break;
                }
                _spaceFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _spaceFreed.Task;
            }
            try
            {
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Discard(request);
                throw;
            }
        }
        return await request.Task.ConfigureAwait(false);
    }

    private static void Discard(AppendRequest request)
    {
        // Never handed out: complete and consume it so that it returns to the pool.
        request.Complete(-1);
        var task = request.Task;
        _ = task.Result;
    }

    private void AddPending(AppendRequest request)
    {
        _pending.Add(request);
        Volatile.Write(ref _pendingCount, _pending.Count); // read without the lock while the writer gathers
        _pendingBytes += request.Bytes;
        if (_writer is null)
        {
            _writer = new Thread(WriterLoop) { IsBackground = true, Name = $"herald-log {Topic}/{Id}" };
            _writer.Start();
        }
        else if (_writerWaiting)
        {
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>Stops taking appends, lets the writer finish what is queued, and closes the files.</summary>
    internal async Task CloseAsync()
    {
        bool started;
        lock (_gate)
        {
            _closing = true;
            started = _writer is not null;
            if (_writerWaiting) Monitor.Pulse(_gate);
            _spaceFreed?.TrySetResult();
        }
        if (started) await _writerExited.Task.ConfigureAwait(false);
        _dataArrived.TrySetException(new LogClosedException($"partition {this}"));
        foreach (var segment in Volatile.Read(ref _segments)) segment.Retire(deleteFiles: false);
    }
}
