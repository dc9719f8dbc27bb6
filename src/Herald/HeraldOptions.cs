namespace Herald;

/// <summary>Options for the whole Herald instance; <see cref="Validate"/> runs at start.</summary>
public sealed class HeraldOptions
{
    /// <summary>The <c>ce_source</c> of published events: this service's name.</summary>
    public string Source { get; set; } = System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name ?? "herald";

    /// <summary>Partitions of a topic that is created without its own setting.</summary>
    public int DefaultPartitions { get; set; } = 1;

    /// <summary>How long stopping waits for in-flight handlers before cancelling them.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Source)) throw new ArgumentException("HeraldOptions.Source must not be empty", nameof(Source));
        if (DefaultPartitions is < 1 or > 10_000) throw Invalid(nameof(DefaultPartitions), "HeraldOptions.DefaultPartitions must be 1 to 10000");
        if (ShutdownTimeout < TimeSpan.Zero || ShutdownTimeout > TimeSpan.FromHours(1))
            throw Invalid(nameof(ShutdownTimeout), "HeraldOptions.ShutdownTimeout must be between 0 and 1 hour");
    }

    private static ArgumentException Invalid(string field, string message) => new(message, field);
}
