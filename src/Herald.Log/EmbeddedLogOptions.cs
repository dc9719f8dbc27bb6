namespace Herald.Log;

/// <summary>Options for <see cref="EmbeddedLog.Open"/>.</summary>
public sealed class EmbeddedLogOptions
{
    /// <summary>Options for topics created without their own.</summary>
    public TopicOptions DefaultTopic { get; set; } = new();

    /// <summary>How often retention and compaction run in the background; null runs them only on
    /// <see cref="EmbeddedLog.RunMaintenanceAsync"/>.</summary>
    public TimeSpan? MaintenanceInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The clock for record timestamps, retention and segment age.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    public void Validate()
    {
        if (DefaultTopic is null) throw new ArgumentException("EmbeddedLogOptions.DefaultTopic must not be null", nameof(DefaultTopic));
        DefaultTopic.Validate("(default)");
        if (MaintenanceInterval is { } m && m <= TimeSpan.Zero)
            throw new ArgumentException("EmbeddedLogOptions.MaintenanceInterval must be positive or null", nameof(MaintenanceInterval));
        if (TimeProvider is null) throw new ArgumentException("EmbeddedLogOptions.TimeProvider must not be null", nameof(TimeProvider));
    }
}
