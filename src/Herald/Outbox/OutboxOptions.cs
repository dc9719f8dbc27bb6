namespace Herald.Outbox;

/// <summary>How the outbox relay works. Defaults suit a single service on the embedded log.</summary>
public sealed class OutboxOptions
{
    /// <summary>Events read and published per relay round.</summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>The longest the relay waits before looking again when nothing woke it: the fallback
    /// for commits it is not told about (another process, a transaction the application committed
    /// itself).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>After an event was written through <see cref="Outbox.PublishAsync{T}(System.Data.Common.DbTransaction, T, PublishOptions?, CancellationToken)"/>
    /// on a transaction Herald does not commit, the relay looks this often until it has seen it.</summary>
    public TimeSpan EagerPollInterval { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The first wait before an event whose publish failed is tried again; it doubles per
    /// attempt up to <see cref="MaxRetryDelay"/>. Later events of its key wait behind it.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>An event that failed this many times is reported as stuck (logged, counted in the
    /// <c>herald.outbox.stuck</c> metric); it is still retried, and only its own key waits for it.</summary>
    public int StuckAttempts { get; set; } = 5;

    /// <summary>How long a relay's lease lasts without renewal: another relay takes over a crashed
    /// one's work after this.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether this process runs a relay (several may; one relays at a time).</summary>
    public bool RunRelay { get; set; } = true;

    /// <summary>Runs after a round's events are durable on the transport and before they are
    /// removed from the outbox: the fault tests' child process is killed there.</summary>
    internal Func<IReadOnlyList<long>, CancellationToken, Task>? AfterPublish { get; set; }

    /// <summary>Throws naming the first invalid field.</summary>
    public void Validate()
    {
        static ArgumentException Invalid(string field, string why) => new($"OutboxOptions.{field} {why}", field);
        if (BatchSize is < 1 or > 100_000) throw Invalid(nameof(BatchSize), $"must be in [1, 100000], was {BatchSize}");
        if (PollInterval <= TimeSpan.Zero || PollInterval > TimeSpan.FromMinutes(10)) throw Invalid(nameof(PollInterval), $"must be in (0, 10 min], was {PollInterval}");
        if (EagerPollInterval <= TimeSpan.Zero || EagerPollInterval > PollInterval) throw Invalid(nameof(EagerPollInterval), $"must be in (0, PollInterval], was {EagerPollInterval}");
        if (RetryDelay <= TimeSpan.Zero) throw Invalid(nameof(RetryDelay), $"must be positive, was {RetryDelay}");
        if (MaxRetryDelay < RetryDelay || MaxRetryDelay > TimeSpan.FromDays(1)) throw Invalid(nameof(MaxRetryDelay), $"must be in [RetryDelay, 1 day], was {MaxRetryDelay}");
        if (StuckAttempts < 1) throw Invalid(nameof(StuckAttempts), $"must be at least 1, was {StuckAttempts}");
        if (Lease < TimeSpan.FromSeconds(1) || Lease > TimeSpan.FromHours(1)) throw Invalid(nameof(Lease), $"must be in [1 s, 1 h], was {Lease}");
    }
}
