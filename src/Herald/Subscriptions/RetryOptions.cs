namespace Herald.Subscriptions;

/// <summary>How a failing event is retried: immediate retries with exponential backoff and
/// jitter while its key waits, then delayed retries through the retry topic (other keys go on,
/// later events of the key wait behind it), then the dead-letter topic.</summary>
public sealed class RetryOptions
{
    /// <summary>Retries right after a failure, before any delayed retry (0 to 100).</summary>
    public int ImmediateRetries { get; set; } = 2;

    /// <summary>The wait before the first immediate retry; it doubles (by <see cref="BackoffMultiplier"/>) each time.</summary>
    public TimeSpan Backoff { get; set; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    public double BackoffMultiplier { get; set; } = 2;

    /// <summary>Randomise each wait within [half, all] of its nominal value, so that retries of
    /// many keys do not fire together.</summary>
    public bool Jitter { get; set; } = true;

    /// <summary>The delays of the delayed retries, one per round (at most 50 rounds). Empty: none.</summary>
    public IList<TimeSpan> Delayed { get; set; } = [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5)];

    /// <summary>The nominal wait before immediate retry <paramref name="retry"/> (0-based), without jitter.</summary>
    public TimeSpan NominalBackoff(int retry)
    {
        var ms = Backoff.TotalMilliseconds * Math.Pow(BackoffMultiplier, retry);
        return ms >= MaxBackoff.TotalMilliseconds ? MaxBackoff : TimeSpan.FromMilliseconds(ms);
    }

    public void Validate(string group)
    {
        if (ImmediateRetries is < 0 or > 100) throw Invalid(nameof(ImmediateRetries), $"subscription '{group}': Retry.ImmediateRetries must be 0 to 100");
        if (Backoff < TimeSpan.Zero || Backoff > TimeSpan.FromMinutes(10)) throw Invalid(nameof(Backoff), $"subscription '{group}': Retry.Backoff must be 0 to 10 minutes");
        if (MaxBackoff < Backoff || MaxBackoff > TimeSpan.FromMinutes(10)) throw Invalid(nameof(MaxBackoff), $"subscription '{group}': Retry.MaxBackoff must be at least Backoff and at most 10 minutes");
        if (BackoffMultiplier is < 1 or > 100 || double.IsNaN(BackoffMultiplier)) throw Invalid(nameof(BackoffMultiplier), $"subscription '{group}': Retry.BackoffMultiplier must be 1 to 100");
        if (Delayed is null) throw Invalid(nameof(Delayed), $"subscription '{group}': Retry.Delayed must not be null");
        if (Delayed.Count > 50) throw Invalid(nameof(Delayed), $"subscription '{group}': at most 50 delayed retries");
        for (var i = 0; i < Delayed.Count; i++)
            if (Delayed[i] <= TimeSpan.Zero || Delayed[i] > TimeSpan.FromDays(7))
                throw Invalid(nameof(Delayed), $"subscription '{group}': Retry.Delayed[{i}] must be more than 0 and at most 7 days");
    }

    private static ArgumentException Invalid(string field, string message) => new(message, field);
}
