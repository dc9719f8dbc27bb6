namespace Herald.Log;

/// <summary>When an append is acknowledged.</summary>
public enum DurabilityMode
{
    /// <summary>After fdatasync, with group commit: concurrent appends share one fsync. The default.</summary>
    AckAfterFsync,

    /// <summary>Relaxed, opt-in: after the write reaches the page cache; an fsync follows every
    /// <see cref="TopicOptions.FlushInterval"/> or <see cref="TopicOptions.FlushBytes"/>. A machine
    /// crash can lose what was acknowledged since the last fsync.</summary>
    AckOnWrite,
}

/// <summary>What a compacting or deleting topic does with old data.</summary>
public enum CleanupPolicy
{
    /// <summary>Whole segments are deleted by <see cref="TopicOptions.RetentionBytes"/> and <see cref="TopicOptions.RetentionTime"/>.</summary>
    Delete,

    /// <summary>The latest value per key is kept; tombstones go after <see cref="TopicOptions.TombstoneRetention"/>.</summary>
    Compact,
}
