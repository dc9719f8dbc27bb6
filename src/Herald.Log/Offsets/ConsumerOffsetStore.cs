using System.Buffers.Binary;
using System.Text;
using Herald.Log.Batches;
using Herald.Log.Internal;

namespace Herald.Log.Offsets;

/// <summary>Committed offsets per (group, topic, partition), with Kafka's meaning: the next offset
/// to read. Each group is one small file replaced crash-safely (temp file, fsync, rename, fsync
/// the directory); concurrent commits of a group share one write (group commit).</summary>
public sealed class ConsumerOffsetStore
{
    private const uint Magic = 0x484F4646; // "HOFF"
    private readonly LogFileSystem _fs;
    private readonly string _directory;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, GroupState> _groups = new(StringComparer.Ordinal);

    internal ConsumerOffsetStore(LogFileSystem fs, string directory)
    {
        _fs = fs;
        _directory = directory;
        Directory.CreateDirectory(directory);
        foreach (var temp in Directory.GetFiles(directory, "*.tmp")) _fs.Delete(temp);
        foreach (var path in Directory.GetFiles(directory, "*.offsets"))
        {
            var (group, offsets) = Load(path);
            _groups[group] = new GroupState(offsets);
        }
    }

    /// <summary>The groups that have committed offsets.</summary>
    public IReadOnlyList<string> Groups
    {
        get { lock (_lock) return [.. _groups.Keys]; }
    }

    /// <summary>The committed offset (the next one to read), or null if the group never committed one.</summary>
    public long? GetCommitted(string group, string topic, int partition)
    {
        lock (_lock)
        {
            return _groups.TryGetValue(group, out var state) && state.Durable.TryGetValue((topic, partition), out var offset) ? offset : null;
        }
    }

    /// <summary>Every committed offset of a group.</summary>
    public IReadOnlyDictionary<(string Topic, int Partition), long> GetCommitted(string group)
    {
        lock (_lock)
        {
            return _groups.TryGetValue(group, out var state) ? new Dictionary<(string, int), long>(state.Durable) : new Dictionary<(string, int), long>();
        }
    }

    /// <summary>Commits one offset; durable when the task completes.</summary>
    public Task CommitAsync(string group, string topic, int partition, long offset, CancellationToken cancellationToken = default) =>
        CommitAsync(group, [new KeyValuePair<(string, int), long>((topic, partition), offset)], cancellationToken);

    /// <summary>Commits several offsets of one group atomically; durable when the task completes.</summary>
    public async Task CommitAsync(string group, IEnumerable<KeyValuePair<(string Topic, int Partition), long>> offsets, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        ArgumentNullException.ThrowIfNull(offsets);
        var changes = offsets.ToList();
        // Validate every entry before applying any: a commit is all or nothing.
        ValidateName(group, nameof(group));
        foreach (var (key, offset) in changes)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(offset);
            ArgumentException.ThrowIfNullOrEmpty(key.Topic);
            ValidateName(key.Topic, "topic");
            ArgumentOutOfRangeException.ThrowIfNegative(key.Partition);
        }
        GroupState state;
        long version;
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out state!)) _groups[group] = state = new GroupState([]);
            foreach (var (key, offset) in changes) state.Offsets[key] = offset;
            version = ++state.Version;
        }
        await state.WriteLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (state.PersistedVersion >= version) return; // a commit that started later wrote ours too
            byte[] content;
            long snapshotVersion;
            Dictionary<(string, int), long> snapshot;
            lock (_lock)
            {
                snapshot = new Dictionary<(string, int), long>(state.Offsets);
                content = Serialize(group, snapshot);
                snapshotVersion = state.Version;
            }
            // Write, fsync, rename and directory fsync block for milliseconds: on a thread of their
            // own, never the caller's (a dispatcher) nor a pool thread (a pool thread blocked in fsync
            // starves the pool on a small machine; pipeline-latency benchmark).
            var path = PathOf(group);
            await Task.Factory.StartNew(() => _fs.WriteAtomically(path, content), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            lock (_lock) state.Durable = snapshot; // readers see a commit only once it is durable
            state.PersistedVersion = snapshotVersion;
        }
        finally
        {
            state.WriteLock.Release();
        }
    }

    /// <summary>Forgets a group's committed offsets.</summary>
    public async Task DeleteGroupAsync(string group, CancellationToken cancellationToken = default)
    {
        GroupState? state;
        lock (_lock) _groups.TryGetValue(group, out state);
        if (state is null) return;
        // Wait out a commit in flight so that it cannot write the file back after the delete.
        await state.WriteLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_lock) _groups.Remove(group);
            _fs.Delete(PathOf(group));
            _fs.SyncDirectory(_directory);
        }
        finally
        {
            state.WriteLock.Release();
        }
    }

    private static void ValidateName(string name, string what)
    {
        if (Encoding.UTF8.GetByteCount(name) > ushort.MaxValue)
            throw new ArgumentException($"{what} name is longer than {ushort.MaxValue} UTF-8 bytes", what);
    }

    private string PathOf(string group) => Path.Combine(_directory, Convert.ToHexString(Encoding.UTF8.GetBytes(group)) + ".offsets");

    private static byte[] Serialize(string group, Dictionary<(string Topic, int Partition), long> offsets)
    {
        var size = 4 + 4 + 2 + Encoding.UTF8.GetByteCount(group) + 4;
        foreach (var ((topic, _), _) in offsets) size += 2 + Encoding.UTF8.GetByteCount(topic) + 4 + 8;
        var buffer = new byte[size];
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(span, Magic);
        var p = 4;
        p += WriteString(span[p..], group);
        BinaryPrimitives.WriteInt32BigEndian(span[p..], offsets.Count);
        p += 4;
        foreach (var ((topic, partition), offset) in offsets)
        {
            p += WriteString(span[p..], topic);
            BinaryPrimitives.WriteInt32BigEndian(span[p..], partition);
            BinaryPrimitives.WriteInt64BigEndian(span[(p + 4)..], offset);
            p += 12;
        }
        BinaryPrimitives.WriteUInt32BigEndian(span[p..], Crc32C.Compute(span[..p]));
        return buffer.AsSpan(0, p + 4).ToArray();
    }

    private static int WriteString(Span<byte> dest, string value)
    {
        var n = Encoding.UTF8.GetBytes(value, dest[2..]);
        if (n > ushort.MaxValue) throw new ArgumentException($"name '{value[..32]}…' is longer than {ushort.MaxValue} bytes");
        BinaryPrimitives.WriteUInt16BigEndian(dest, (ushort)n);
        return 2 + n;
    }

    private (string Group, Dictionary<(string, int), long> Offsets) Load(string path)
    {
        var data = _fs.ReadAll(path);
        var span = data.AsSpan();
        string Fail(long at, string why) => throw new LogCorruptionException(path, at, why);
        if (data.Length < 14 || BinaryPrimitives.ReadUInt32BigEndian(span) != Magic) Fail(0, "not a consumer offsets file (bad magic)");
        if (BinaryPrimitives.ReadUInt32BigEndian(span[^4..]) != Crc32C.Compute(span[..^4])) Fail(data.Length - 4, "CRC-32C mismatch");
        try
        {
            return Parse(span);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new LogCorruptionException(path, 0, "consumer offsets file is malformed (its fields run past its end)");
        }
    }

    private static (string Group, Dictionary<(string, int), long> Offsets) Parse(ReadOnlySpan<byte> span)
    {
        var p = 4;
        var group = ReadString(span, ref p);
        var count = BinaryPrimitives.ReadInt32BigEndian(span[p..]);
        p += 4;
        if (count < 0 || count > span.Length / 14) throw new ArgumentOutOfRangeException(nameof(span), $"entry count {count} does not fit the file");
        var offsets = new Dictionary<(string, int), long>(count);
        for (var i = 0; i < count; i++)
        {
            var topic = ReadString(span, ref p);
            offsets[(topic, BinaryPrimitives.ReadInt32BigEndian(span[p..]))] = BinaryPrimitives.ReadInt64BigEndian(span[(p + 4)..]);
            p += 12;
        }
        return (group, offsets);
    }

    private static string ReadString(ReadOnlySpan<byte> span, ref int p)
    {
        var n = BinaryPrimitives.ReadUInt16BigEndian(span[p..]);
        var s = Encoding.UTF8.GetString(span.Slice(p + 2, n));
        p += 2 + n;
        return s;
    }

    private sealed class GroupState(Dictionary<(string, int), long> offsets)
    {
        public readonly Dictionary<(string Topic, int Partition), long> Offsets = offsets;
        public Dictionary<(string Topic, int Partition), long> Durable = new(offsets);
        public readonly SemaphoreSlim WriteLock = new(1, 1);
        public long Version;
        public long PersistedVersion;
    }
}
