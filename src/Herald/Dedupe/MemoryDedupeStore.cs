namespace Herald.Dedupe;

/// <summary>
/// An in-process <see cref="IDedupeStore"/> holding at most <c>capacity</c> marks: the cheap mode,
/// for one process and for duplicates that arrive close together.
/// </summary>
/// <remarks>
/// <para>Time to live runs on the <see cref="TimeProvider"/>'s monotonic timestamp, so a wall-clock
/// jump neither expires marks early nor keeps them late. An expired mark counts as absent and is
/// removed lazily, a few at each mark.</para>
/// <para>Under pressure the store forgets: when it holds <c>capacity</c> live marks and a new key
/// arrives, it evicts the mark that expires soonest (an expired one when there is any). A
/// redelivery of an evicted key is then marked again and runs again, so a duplicate can get
/// through. Size <c>capacity</c> for the keys expected within one time to live, or use a
/// persistent store where a duplicate must never pass.</para>
/// <para>Thread-safe; each operation is O(log n) amortized, under one lock.</para>
/// </remarks>
public sealed class MemoryDedupeStore : IDedupeStore
{
    /// <summary>The largest capacity accepted.</summary>
    public const int MaxCapacity = 100_000_000;

    // Expired marks removed from the front of the expiry queue at each mark: enough for removal to
    // outpace insertion, so memory follows the live marks back down after a burst.
    private const int SweepPerMark = 2;

    // The expiry queue keeps superseded entries (renewed or evicted keys) until they reach its
    // front; it is rebuilt from the marks when they outnumber live ones by this much, which keeps
    // it within 2 x capacity + StaleSlack and costs O(1) amortized per operation.
    internal const int StaleSlack = 64;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _expiries = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, long> _byExpiry = new();
    private readonly TimeProvider _time;
    private readonly long _frequency;
    private readonly int _capacity;

    /// <summary>A store holding at most <paramref name="capacity"/> marks (1 to <see cref="MaxCapacity"/>).</summary>
    /// <param name="capacity">The most marks held at once; memory grows with use up to it.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> when null.</param>
    public MemoryDedupeStore(int capacity, TimeProvider? timeProvider = null)
    {
        if (capacity is < 1 or > MaxCapacity)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"MemoryDedupeStore capacity must be 1 to {MaxCapacity}");
        _capacity = capacity;
        _time = timeProvider ?? TimeProvider.System;
        _frequency = _time.TimestampFrequency;
    }

    /// <summary>Marks held, expired ones not yet removed included.</summary>
    internal int Count
    {
        get { lock (_lock) return _expiries.Count; }
    }

    /// <summary>Entries in the expiry queue, superseded ones included.</summary>
    internal int QueuedCount
    {
        get { lock (_lock) return _byExpiry.Count; }
    }

    /// <inheritdoc />
    public ValueTask<bool> TryMarkAsync(string key, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (ttl <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "The time to live of a dedupe mark must be positive");
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<bool>(cancellationToken);
        return new ValueTask<bool>(TryMark(key, ToTimestampUnits(ttl)));
    }

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<bool>(cancellationToken);
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            SweepExpired(now);
            return new ValueTask<bool>(_expiries.TryGetValue(key, out var expiry) && expiry > now);
        }
    }

    private bool TryMark(string key, long ttlUnits)
    {
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            SweepExpired(now);
            if (_expiries.TryGetValue(key, out long current))
            {
                if (current > now) return false;
                // Expired and not yet swept: renewed in place below, the old queue entry goes stale.
            }
            else if (_expiries.Count >= _capacity)
            {
                EvictSoonestExpiring();
            }

            long expiry = now > long.MaxValue - ttlUnits ? long.MaxValue : now + ttlUnits;
            _expiries[key] = expiry;
            _byExpiry.Enqueue(key, expiry);
            CompactIfStale();
            return true;
        }
    }

    /// <summary>Removes up to <see cref="SweepPerMark"/> entries from the front of the queue that are
    /// superseded or expired.</summary>
    private void SweepExpired(long now)
    {
        for (int i = 0; i < SweepPerMark && _byExpiry.TryPeek(out string? key, out long expiry); i++)
        {
            bool live = IsCurrent(key, expiry);
            if (live && expiry > now) return;
            _byExpiry.Dequeue();
            if (live) _expiries.Remove(key);
        }
    }

    /// <summary>Evicts the mark with the smallest expiry: an expired one when there is any, else the
    /// live one that would expire first. Every mark has a queue entry, so one is found.</summary>
    private void EvictSoonestExpiring()
    {
        while (_byExpiry.TryDequeue(out string? key, out long expiry))
        {
            if (IsCurrent(key, expiry))
            {
                _expiries.Remove(key);
                return;
            }
        }
    }

    /// <summary>A queue entry is current when its key still holds that expiry; otherwise the key was
    /// evicted or renewed since.</summary>
    private bool IsCurrent(string key, long expiry) =>
        _expiries.TryGetValue(key, out long current) && current == expiry;

    private void CompactIfStale()
    {
        if (_byExpiry.Count <= 2 * _expiries.Count + StaleSlack) return;
        _byExpiry.Clear();
        foreach (KeyValuePair<string, long> mark in _expiries) _byExpiry.Enqueue(mark.Key, mark.Value);
    }

    /// <summary>The time to live in timestamp units, rounded up so that a mark never expires early,
    /// at least one unit, saturating rather than overflowing.</summary>
    private long ToTimestampUnits(TimeSpan ttl)
    {
        Int128 units = ((Int128)ttl.Ticks * _frequency + (TimeSpan.TicksPerSecond - 1)) / TimeSpan.TicksPerSecond;
        return units > long.MaxValue ? long.MaxValue : (long)units;
    }
}
