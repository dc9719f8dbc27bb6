using System.Collections.Concurrent;
using Herald.Log.Internal;
using Herald.Log.Partitions;
using Herald.Log.Segments;

namespace Herald.Log;

/// <summary>One partition of a topic: an ordered sequence of segment files. Appends from any
/// number of threads are ordered by one writer thread that group-commits them (one fsync for
/// everything pending); readers read concurrently up to <see cref="EndOffset"/>, which only ever
/// covers records that are durable per the topic's policy.</summary>
public sealed partial class LogPartition
{
    private readonly LogFileSystem _fs;
    private readonly TimeProvider _time;
    private readonly TopicOptions _options;
    private readonly Lock _segmentsLock = new();
    private readonly ConcurrentQueue<AppendRequest> _requestPool = new();
    private Segment[] _segments = [];
    private long _endOffset;
    private TaskCompletionSource _dataArrived = NewSignal();
    private volatile LogCorruptionException? _corruption;
    private long _corruptFromOffset = long.MaxValue;

    internal LogPartition(string topic, int id, string directory, TopicOptions options, LogFileSystem fs, EmbeddedLogOptions logOptions)
    {
        Topic = topic;
        Id = id;
        Directory = directory;
        _options = options;
        _fs = fs;
        _time = logOptions.TimeProvider;
        _gatherTicks = (long)(logOptions.GroupCommitDelay.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        _gatherFrom = logOptions.GroupCommitDelayMinAppends;
        System.IO.Directory.CreateDirectory(directory);
        Recovery = LoadSegments(truncateTornTail: true, protectedLength: 0);
        _endOffset = Active.NextOffset;
    }

    public string Topic { get; }

    public int Id { get; }

    /// <summary>The folder holding this partition's segments.</summary>
    public string Directory { get; }

    /// <summary>What recovery found and did when the partition was opened.</summary>
    public RecoveryReport Recovery { get; private set; }

    /// <summary>The first offset still held (retention and compaction move it forward).</summary>
    public long StartOffset => Volatile.Read(ref _segments)[0].BaseOffset;

    /// <summary>The offset the next append gets: every offset below it is readable and durable
    /// per the topic's policy.</summary>
    public long EndOffset => Volatile.Read(ref _endOffset);

    /// <summary>Bytes held by all segments.</summary>
    public long SizeBytes
    {
        get
        {
            long total = 0;
            foreach (var s in Volatile.Read(ref _segments)) total += s.CommittedSize;
            return total;
        }
    }

    internal int SegmentCount => Volatile.Read(ref _segments).Length;

    internal IReadOnlyList<Segment> Segments => Volatile.Read(ref _segments);

    private Segment Active => _segments[^1];

    /// <summary>The corruption that stops reads at and past <see cref="LogCorruptionException"/>'s
    /// batch, if any was found.</summary>
    public LogCorruptionException? Corruption => _corruption;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Opens every segment: sealed ones trust their index files when those cover the
    /// file exactly (otherwise they are rebuilt by a validating scan); the last one is always
    /// scanned, and a torn tail is truncated to the last whole batch. An invalid batch followed
    /// by valid ones is corruption: reported with file and byte offset, never truncated.</summary>
    private RecoveryReport LoadSegments(bool truncateTornTail, long protectedLength)
    {
        foreach (var leftover in System.IO.Directory.GetFiles(Directory, "*.tmp").Concat(System.IO.Directory.GetFiles(Directory, "*.cleaned")))
            _fs.Delete(leftover);

        var bases = new List<long>();
        foreach (var path in System.IO.Directory.GetFiles(Directory, "*.log"))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(path), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var b))
                bases.Add(b);
        }
        bases.Sort();
        var created = false;
        if (bases.Count == 0)
        {
            CreateSegmentFile(0);
            bases.Add(0);
            created = true;
        }

        var segments = new Segment[bases.Count];
        long truncated = 0;
        var rebuilt = 0;
        LogCorruptionException? corruption = null;
        long corruptFrom = long.MaxValue;
        Internal.LogFile? file = null;
        try
        {
        for (var i = 0; i < bases.Count; i++)
        {
            var path = Path.Combine(Directory, Segment.FileName(bases[i]));
            file = _fs.Open(path, create: false);
            var isLast = i == bases.Count - 1;
            var length = file.Length;
            var loaded = isLast ? null : SegmentIndex.TryLoad(_fs, path, length, _options.IndexIntervalBytes);
            Segment segment;
            if (loaded is { } l)
            {
                segment = new Segment(_fs, path, bases[i], file, l.Index) { Size = length, NextOffset = l.NextOffset };
            }
            else
            {
                var index = new SegmentIndex(_options.IndexIntervalBytes);
                var scan = SegmentScanner.Scan(file, bases[i], _options.MaxBatchBytes, index);
                rebuilt++;
                segment = new Segment(_fs, path, bases[i], file, index) { Size = scan.ValidLength, NextOffset = scan.NextOffset };
                if (scan.Reason is not null)
                {
                    if (isLast && !scan.ValidBatchFollows && truncateTornTail && scan.ValidLength >= protectedLength)
                    {
                        // A torn write: nothing past the last whole batch was ever acknowledged.
                        truncated += length - scan.ValidLength;
                        file.SetLength(scan.ValidLength);
                        file.Sync();
                    }
                    else if (corruption is null)
                    {
                        corruption = new LogCorruptionException(path, scan.InvalidAt, scan.Reason);
                        corruptFrom = scan.NextOffset;
                        segment.Size = length; // keep the damaged bytes: never truncate what may be acknowledged
                    }
                }
                else if (!isLast)
                {
                    index.Save(_fs, path, scan.ValidLength, scan.NextOffset, sync: false);
                }
            }
            segment.CommittedSize = segment.Size;
            segment.Sealed = !isLast;
            if (isLast) segment.FirstAppend = FirstBatchTime(file, segment.Size);
            if (segment.NextOffset < bases[i]) segment.NextOffset = bases[i];
            segments[i] = segment;
            file = null;
        }
        }
        catch
        {
            // Close what this load opened: a reopen that failed (say, on a full disk) must not leak handles.
            file?.Dispose();
            foreach (var opened in segments) opened?.File.Dispose();
            throw;
        }
        // A segment that holds nothing past the next one's base (say after compaction) still ends there.
        for (var i = 0; i + 1 < segments.Length; i++)
        {
            if (segments[i].NextOffset > segments[i + 1].BaseOffset && corruption is null)
            {
                corruption = new LogCorruptionException(segments[i].LogPath, segments[i].Size,
                    $"segment ends at offset {segments[i].NextOffset}, past the next segment's base offset {segments[i + 1].BaseOffset}");
                corruptFrom = segments[i + 1].BaseOffset;
            }
        }
        lock (_segmentsLock)
        {
            Volatile.Write(ref _segments, segments);
            // A reload keeps corruption that readers found earlier: sealed segments load from their
            // index files without a scan, so the damage would otherwise go unreported until read again.
            if (corruptFrom < _corruptFromOffset)
            {
                _corruption = corruption;
                Volatile.Write(ref _corruptFromOffset, corruptFrom);
            }
        }
        return new RecoveryReport(segments.Length, rebuilt, truncated, corruption, created);
    }

    /// <summary>When the active segment got its first batch, as Kafka reckons segment age: that
    /// batch's newest timestamp (never later than now). Without it, every reopen would restart the
    /// segment's age, and a log reopened more often than SegmentAge would never roll or age out.</summary>
    private DateTimeOffset? FirstBatchTime(LogFile file, long size)
    {
        Span<byte> head = stackalloc byte[Batches.RecordBatch.HeaderSize];
        if (size < head.Length || !file.ReadExactly(head, 0)) return null;
        var first = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(Batches.RecordBatch.ReadHeader(head).MaxTimestamp, 0, 253_402_300_799_999));
        var now = _time.GetUtcNow();
        return first < now ? first : now;
    }

    private void CreateSegmentFile(long baseOffset)
    {
        var path = Path.Combine(Directory, Segment.FileName(baseOffset));
        using (var file = _fs.Open(path, create: true)) file.Sync();
        _fs.SyncDirectory(Directory);
    }

    private void ThrowIfCorruptAt(long offset)
    {
        if (offset >= Volatile.Read(ref _corruptFromOffset) && _corruption is { } c) throw c;
    }

    private void MarkCorrupt(LogCorruptionException error, long fromOffset)
    {
        lock (_segmentsLock)
        {
            if (fromOffset < _corruptFromOffset)
            {
                _corruption = error;
                Volatile.Write(ref _corruptFromOffset, fromOffset);
            }
        }
    }

    /// <summary>Replaces the segment array with <paramref name="change"/> of the current one, so that
    /// the writer (rolling) and maintenance (retention, compaction) never lose each other's edits.</summary>
    private Segment[] UpdateSegments(Func<Segment[], Segment[]> change)
    {
        lock (_segmentsLock)
        {
            var updated = change(_segments);
            Volatile.Write(ref _segments, updated);
            return updated;
        }
    }

    public override string ToString() => $"{Topic}/{Id}";
}

/// <summary>What opening a partition found: segments, indexes rebuilt, bytes of torn tail
/// truncated, and corruption that stops reads past it.</summary>
public sealed record RecoveryReport(int Segments, int IndexesRebuilt, long TruncatedBytes, LogCorruptionException? Corruption, bool CreatedNew);
