namespace Herald.Log;

/// <summary>How a topic stores its partitions. Persisted with the topic when it is created.</summary>
public sealed class TopicOptions
{
    public int Partitions { get; set; } = 1;

    public DurabilityMode Durability { get; set; } = DurabilityMode.AckAfterFsync;

    /// <summary>With <see cref="DurabilityMode.AckOnWrite"/>: the longest time between fsyncs.</summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>With <see cref="DurabilityMode.AckOnWrite"/>: the most bytes written between fsyncs.</summary>
    public long FlushBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>A segment is sealed and a new one started past this size.</summary>
    public long SegmentBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>A segment is sealed once its first record is this old (so age retention can act).</summary>
    public TimeSpan SegmentAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Bytes of log between two sparse index entries.</summary>
    public int IndexIntervalBytes { get; set; } = 4096;

    /// <summary>The largest record batch, and so the largest record, the topic accepts.</summary>
    public int MaxBatchBytes { get; set; } = 1024 * 1024;

    /// <summary>Appends waiting for the writer, in bytes, before appenders wait (backpressure).</summary>
    public long MaxPendingBytes { get; set; } = 32 * 1024 * 1024;

    public CleanupPolicy Cleanup { get; set; } = CleanupPolicy.Delete;

    /// <summary>Delete whole sealed segments while the partition is larger than this; null keeps all.</summary>
    public long? RetentionBytes { get; set; }

    /// <summary>Delete whole sealed segments whose newest record is older than this; null keeps all.</summary>
    public TimeSpan? RetentionTime { get; set; }

    /// <summary>With <see cref="CleanupPolicy.Compact"/>: how long a tombstone stays before compaction removes it.</summary>
    public TimeSpan TombstoneRetention { get; set; } = TimeSpan.FromDays(1);

    /// <summary>With <see cref="CleanupPolicy.Compact"/>: the most distinct keys one compaction pass holds in memory.</summary>
    public int CompactionMaxKeys { get; set; } = 1_000_000;

    /// <summary>Throws naming the first invalid field.</summary>
    public void Validate(string topic)
    {
        static void Fail(string topic, string field, string why) =>
            throw new ArgumentException($"TopicOptions.{field} for topic '{topic}' {why}", field);

        if (Partitions is < 1 or > 10_000) Fail(topic, nameof(Partitions), $"must be in [1, 10000], was {Partitions}");
        if (!Enum.IsDefined(Durability)) Fail(topic, nameof(Durability), $"is not a known mode: {Durability}");
        if (FlushInterval <= TimeSpan.Zero) Fail(topic, nameof(FlushInterval), "must be positive");
        if (FlushBytes < 1) Fail(topic, nameof(FlushBytes), "must be positive");
        if (MaxBatchBytes is < 1024 or > 256 * 1024 * 1024) Fail(topic, nameof(MaxBatchBytes), $"must be in [1 KiB, 256 MiB], was {MaxBatchBytes}");
        if (SegmentBytes < MaxBatchBytes || SegmentBytes > int.MaxValue) Fail(topic, nameof(SegmentBytes), $"must be in [MaxBatchBytes ({MaxBatchBytes}), {int.MaxValue}], was {SegmentBytes}");
        if (SegmentAge <= TimeSpan.Zero) Fail(topic, nameof(SegmentAge), "must be positive");
        if (IndexIntervalBytes < 64) Fail(topic, nameof(IndexIntervalBytes), $"must be at least 64, was {IndexIntervalBytes}");
        if (MaxPendingBytes < MaxBatchBytes) Fail(topic, nameof(MaxPendingBytes), $"must be at least MaxBatchBytes ({MaxBatchBytes}), was {MaxPendingBytes}");
        if (!Enum.IsDefined(Cleanup)) Fail(topic, nameof(Cleanup), $"is not a known policy: {Cleanup}");
        if (RetentionBytes is < 0) Fail(topic, nameof(RetentionBytes), "must not be negative");
        if (RetentionTime is { } rt && rt <= TimeSpan.Zero) Fail(topic, nameof(RetentionTime), "must be positive");
        if (TombstoneRetention < TimeSpan.Zero) Fail(topic, nameof(TombstoneRetention), "must not be negative");
        if (CompactionMaxKeys < 1) Fail(topic, nameof(CompactionMaxKeys), "must be positive");
    }

    /// <summary>A copy to change without touching this one.</summary>
    public TopicOptions Clone() => (TopicOptions)MemberwiseClone();
}
