namespace Herald.Log;

/// <summary>Options for <see cref="EmbeddedLog.Open"/>.</summary>
public sealed class EmbeddedLogOptions
{
    /// <summary>Options for topics created without their own.</summary>
    public TopicOptions DefaultTopic { get; set; } = new();

    /// <summary>How often retention and compaction run in the background; null runs them only on
    /// <see cref="EmbeddedLog.RunMaintenanceAsync"/>.</summary>
    public TimeSpan? MaintenanceInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Group commit delay: after writing a group of at least
    /// <see cref="GroupCommitDelayMinAppends"/> appends, a partition's writer gathers more before
    /// its next write and fsync, for at most this long, while appends keep arriving (it writes at
    /// once when none has arrived for 20 µs, or when twice the last group is waiting). A busy
    /// partition then pays one write and one fsync for thousands of appends instead of hundreds;
    /// appenders that wait for their acknowledgements are never kept waiting, and a quiet
    /// partition never delays. <see cref="TimeSpan.Zero"/> turns it off.</summary>
    public TimeSpan GroupCommitDelay { get; set; } = TimeSpan.FromMilliseconds(1);

    /// <summary>The group size from which <see cref="GroupCommitDelay"/> applies.</summary>
    public int GroupCommitDelayMinAppends { get; set; } = 200;

    /// <summary>The clock for record timestamps, retention and segment age.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    public void Validate()
    {
        if (DefaultTopic is null) throw new ArgumentException("EmbeddedLogOptions.DefaultTopic must not be null", nameof(DefaultTopic));
        DefaultTopic.Validate("(default)");
        if (MaintenanceInterval is { } m && m <= TimeSpan.Zero)
            throw new ArgumentException("EmbeddedLogOptions.MaintenanceInterval must be positive or null", nameof(MaintenanceInterval));
        if (GroupCommitDelay < TimeSpan.Zero || GroupCommitDelay > TimeSpan.FromMilliseconds(100))
            throw new ArgumentException($"EmbeddedLogOptions.GroupCommitDelay must be in [0, 100 ms], was {GroupCommitDelay.TotalMilliseconds} ms", nameof(GroupCommitDelay));
        if (GroupCommitDelayMinAppends < 1)
            throw new ArgumentException($"EmbeddedLogOptions.GroupCommitDelayMinAppends must be at least 1, was {GroupCommitDelayMinAppends}", nameof(GroupCommitDelayMinAppends));
        if (TimeProvider is null) throw new ArgumentException("EmbeddedLogOptions.TimeProvider must not be null", nameof(TimeProvider));
    }
}
