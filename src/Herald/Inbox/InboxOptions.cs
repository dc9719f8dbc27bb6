namespace Herald.Inbox;

/// <summary>How long the inbox remembers handled events. A redelivery older than what the inbox
/// keeps runs its handler again, so keep entries for longer than any redelivery can come late
/// (a consumer group's lag, a replay of dead letters).</summary>
public sealed class InboxOptions
{
    /// <summary>Entries older than this are removed.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The most entries kept, over all groups: the oldest beyond it are removed.</summary>
    public long MaxEntries { get; set; } = 10_000_000;

    /// <summary>How often old entries are removed.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Throws naming the first invalid field.</summary>
    public void Validate()
    {
        static ArgumentException Invalid(string field, string why) => new($"InboxOptions.{field} {why}", field);
        if (Retention < TimeSpan.FromSeconds(1) || Retention > TimeSpan.FromDays(3650)) throw Invalid(nameof(Retention), $"must be in [1 s, 3650 days], was {Retention}");
        if (MaxEntries < 1) throw Invalid(nameof(MaxEntries), $"must be at least 1, was {MaxEntries}");
        if (PurgeInterval < TimeSpan.FromMilliseconds(10) || PurgeInterval > TimeSpan.FromDays(1)) throw Invalid(nameof(PurgeInterval), $"must be in [10 ms, 1 day], was {PurgeInterval}");
    }
}
