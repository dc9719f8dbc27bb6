namespace Herald.Internal;

/// <summary>Per (topic, group) and partition: the keys whose events wait in the retry topic
/// (pending, by original offset: a key's events must run in original-offset order) and the keys
/// that are parked (they have unresolved dead letters). Shared by the subscription that owns the
/// partition and the dead-letter API; <see cref="Gate"/> serialises parking with replay.</summary>
internal sealed class KeyRouting(string topic, string group)
{
    private readonly object _lock = new();
    private readonly Dictionary<int, Partition> _partitions = [];

    public string Topic { get; } = topic;
    public string Group { get; } = group;

    /// <summary>Held while deciding to park or unpark a key and writing the records that make it so.</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    internal sealed class ParkedKey
    {
        public int Count;
        public string? ExceptionType;
        public string? FailureFrame;
        public long HeadOffset = -1;

        /// <summary>The dead-letter offset of the key's latest failure (not a parked follower): a
        /// replay made after it bypasses the park; a failure after the replay parks it again.</summary>
        public long LatestFailure = -1;
    }

    internal sealed class Partition
    {
        /// <summary>Per key: original offset → the retry-topic offset of its latest copy (-1 while
        /// being written). Older copies (left by a restart or a requeue) are stale.</summary>
        public readonly Dictionary<ReadOnlyMemory<byte>, SortedDictionary<long, long>> Pending = new(ByteKeyComparer.Instance);
        public readonly Dictionary<ReadOnlyMemory<byte>, ParkedKey> Parked = new(ByteKeyComparer.Instance);
        public volatile int Blocked; // Pending.Count + Parked.Count, read without the lock

        /// <summary>Events finished before a restart whose copies the retry topic still holds past
        /// its committed offset: original offset → the offset of their done marker.</summary>
        public readonly Dictionary<ReadOnlyMemory<byte>, Dictionary<long, long>> Done = new(ByteKeyComparer.Instance);
        public volatile int DoneCount;
        public void Recount() => Blocked = Pending.Count + Parked.Count;
    }

    public void Load(int partition, Partition state)
    {
        lock (_lock)
        {
            state.Recount();
            _partitions[partition] = state;
        }
    }

    public void Unload(int partition)
    {
        lock (_lock) _partitions.Remove(partition);
    }

    /// <summary>True when this copy of a retry-topic event was finished before a restart (a done
    /// marker for it follows the copy).</summary>
    public bool IsDone(int partition, ReadOnlyMemory<byte> key, long originalOffset, long retryOffset)
    {
        lock (_lock)
            return _partitions.TryGetValue(partition, out var p) && p.DoneCount > 0 && p.Done.TryGetValue(key, out var done)
                && done.TryGetValue(originalOffset, out var markerAt) && markerAt > retryOffset;
    }

    public bool IsLoaded(int partition)
    {
        lock (_lock) return _partitions.ContainsKey(partition);
    }

    /// <summary>The number of blocked (pending or parked) keys, without taking the lock: zero means
    /// every key of the partition runs straight through.</summary>
    public int BlockedKeys(int partition)
    {
        lock (_lock) return _partitions.TryGetValue(partition, out var p) ? p.Blocked : 0;
    }

    public Partition? Get(int partition)
    {
        lock (_lock) return _partitions.GetValueOrDefault(partition);
    }

    public bool IsParked(int partition, ReadOnlyMemory<byte> key)
    {
        lock (_lock) return _partitions.TryGetValue(partition, out var p) && p.Parked.ContainsKey(key);
    }

    public ParkedKey? Parked(int partition, ReadOnlyMemory<byte> key)
    {
        lock (_lock) return _partitions.TryGetValue(partition, out var p) ? p.Parked.GetValueOrDefault(key) : null;
    }

    public bool IsPending(int partition, ReadOnlyMemory<byte> key, long originalOffset)
    {
        lock (_lock) return _partitions.TryGetValue(partition, out var p) && p.Pending.TryGetValue(key, out var set) && set.ContainsKey(originalOffset);
    }

    public bool TryGetMinPending(int partition, ReadOnlyMemory<byte> key, out long min)
    {
        lock (_lock)
        {
            if (_partitions.TryGetValue(partition, out var p) && p.Pending.TryGetValue(key, out var set) && set.Count > 0)
            {
                foreach (var first in set.Keys)
                {
                    min = first;
                    return true;
                }
            }
            min = -1;
            return false;
        }
    }

    public void AddPending(int partition, ReadOnlyMemory<byte> key, long originalOffset, long retryOffset = -1)
    {
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var p)) return;
            if (!p.Pending.TryGetValue(key, out var set)) p.Pending[key.ToArray()] = set = [];
            set[originalOffset] = Math.Max(retryOffset, set.GetValueOrDefault(originalOffset, -1));
            p.Recount();
        }
    }

    /// <summary>Records where the latest copy of a pending event was written in the retry topic.</summary>
    public void SetLatestCopy(int partition, ReadOnlyMemory<byte> key, long originalOffset, long retryOffset)
    {
        lock (_lock)
        {
            if (_partitions.TryGetValue(partition, out var p) && p.Pending.TryGetValue(key, out var set) && set.TryGetValue(originalOffset, out var latest))
                set[originalOffset] = Math.Max(retryOffset, latest);
        }
    }

    /// <summary>True when a newer copy of this pending event exists further on in the retry topic.</summary>
    public bool IsStaleCopy(int partition, ReadOnlyMemory<byte> key, long originalOffset, long retryOffset)
    {
        lock (_lock)
            return _partitions.TryGetValue(partition, out var p) && p.Pending.TryGetValue(key, out var set)
                && set.TryGetValue(originalOffset, out var latest) && latest > retryOffset;
    }

    public void RemovePending(int partition, ReadOnlyMemory<byte> key, long originalOffset)
    {
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var p) || !p.Pending.TryGetValue(key, out var set)) return;
            set.Remove(originalOffset);
            if (set.Count == 0) p.Pending.Remove(key);
            p.Recount();
        }
    }

    /// <summary>Counts one more dead letter of the key; <paramref name="failureOffset"/> is the
    /// dead-letter offset when the entry is a failure of its own (not a parked follower).</summary>
    public void AddParked(int partition, ReadOnlyMemory<byte> key, long headOffset, string? exceptionType, string? frame, long failureOffset = -1)
    {
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var p)) return;
            if (!p.Parked.TryGetValue(key, out var parked))
                p.Parked[key.ToArray()] = parked = new ParkedKey { HeadOffset = headOffset, ExceptionType = exceptionType, FailureFrame = frame };
            parked.Count++;
            parked.LatestFailure = Math.Max(parked.LatestFailure, failureOffset);
            p.Recount();
        }
    }

    public void RemoveParked(int partition, ReadOnlyMemory<byte> key, int count)
    {
        lock (_lock)
        {
            if (!_partitions.TryGetValue(partition, out var p) || !p.Parked.TryGetValue(key, out var parked)) return;
            parked.Count -= count;
            if (parked.Count <= 0) p.Parked.Remove(key);
            p.Recount();
        }
    }
}

/// <summary>Every <see cref="KeyRouting"/> of this Herald instance.</summary>
internal sealed class KeyRoutingRegistry
{
    private readonly Dictionary<(string, string), KeyRouting> _all = [];

    public KeyRouting Get(string topic, string group)
    {
        lock (_all)
        {
            if (!_all.TryGetValue((topic, group), out var r)) _all[(topic, group)] = r = new KeyRouting(topic, group);
            return r;
        }
    }
}
