using Herald.Transport;

namespace Herald.Subscriptions;

/// <summary>Options of one subscription (one consumer group).</summary>
public sealed class SubscriptionOptions
{
    /// <summary>Handlers running at once, across keys (1 to 100000). Events of one key always run one at a time, in order.</summary>
    public int MaxInFlight { get; set; } = 64;

    /// <summary>Records fetched but not yet committable, per kind of topic (main, retry).</summary>
    public int PrefetchRecords { get; set; } = 10_000;

    /// <summary>Bytes of records fetched but not yet committable, per kind of topic (main, retry).</summary>
    public long PrefetchBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Where a new group starts.</summary>
    public StartFrom StartFrom { get; set; } = StartFrom.Earliest;

    public DeadLetterMode DeadLetterMode { get; set; } = DeadLetterMode.Park;

    public HandlerScope HandlerScope { get; set; } = HandlerScope.PerEvent;

    public RetryOptions Retry { get; set; } = new();

    /// <summary>How long handlers of partitions being taken away (a rebalance) may run on before
    /// the partitions go anyway: what finished by then is committed, the rest is abandoned
    /// uncommitted, and the next owner handles it again. Kafka's group waits for the revocation
    /// (up to <c>max.poll.interval.ms</c>), so this bounds how long a rebalance can stall.</summary>
    public TimeSpan RevokeTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often finished offsets are committed.</summary>
    public TimeSpan CommitInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Keys with events waiting in the retry topic or parked, per partition, before
    /// consumption of that partition pauses.</summary>
    public int MaxBlockedKeys { get; set; } = 100_000;

    /// <summary>How redelivered events are recognised (<see cref="SubscriptionBuilder.UseInbox"/>,
    /// <see cref="SubscriptionBuilder.UseDedupe"/>); none by default.</summary>
    public Idempotency Idempotency { get; set; } = Idempotency.None;

    /// <summary>With <see cref="Idempotency.Dedupe"/>: how long a handled event's id is remembered.</summary>
    public TimeSpan DedupeTtl { get; set; } = TimeSpan.FromDays(1);

    public void Validate(string group)
    {
        if (MaxInFlight is < 1 or > 100_000) throw Invalid(nameof(MaxInFlight), $"subscription '{group}': MaxInFlight must be 1 to 100000");
        if (PrefetchRecords < 1 || PrefetchRecords > 10_000_000) throw Invalid(nameof(PrefetchRecords), $"subscription '{group}': PrefetchRecords must be 1 to 10000000");
        if (PrefetchBytes < 64 * 1024 || PrefetchBytes > 4L * 1024 * 1024 * 1024) throw Invalid(nameof(PrefetchBytes), $"subscription '{group}': PrefetchBytes must be 64 KiB to 4 GiB");
        if (RevokeTimeout < TimeSpan.Zero || RevokeTimeout > TimeSpan.FromMinutes(10)) throw Invalid(nameof(RevokeTimeout), $"subscription '{group}': RevokeTimeout must be 0 to 10 minutes");
        if (CommitInterval < TimeSpan.FromMilliseconds(1) || CommitInterval > TimeSpan.FromMinutes(5)) throw Invalid(nameof(CommitInterval), $"subscription '{group}': CommitInterval must be 1 ms to 5 minutes");
        if (MaxBlockedKeys < 1) throw Invalid(nameof(MaxBlockedKeys), $"subscription '{group}': MaxBlockedKeys must be positive");
        if (Retry is null) throw Invalid(nameof(Retry), $"subscription '{group}': Retry must not be null");
        if (!Enum.IsDefined(Idempotency)) throw Invalid(nameof(Idempotency), $"subscription '{group}': Idempotency {(int)Idempotency} is not a defined value");
        if (DedupeTtl < TimeSpan.FromSeconds(1) || DedupeTtl > TimeSpan.FromDays(365)) throw Invalid(nameof(DedupeTtl), $"subscription '{group}': DedupeTtl must be 1 second to 365 days");
        Retry.Validate(group);
    }

    private static ArgumentException Invalid(string field, string message) => new(message, field);
}
