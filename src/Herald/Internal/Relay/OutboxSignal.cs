namespace Herald.Internal.Relay;

/// <summary>Wakes the relay: at once after a commit it is told about, and eagerly (every
/// <see cref="OutboxOptions.EagerPollInterval"/>) for a while after a write on a transaction it
/// is not told about.</summary>
internal sealed class OutboxSignal(TimeProvider time)
{
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _eagerUntil;

    /// <summary>A commit added events: the relay looks now.</summary>
    public void Wake() => Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Events were added to a transaction the application commits itself: the relay
    /// looks often for the next <paramref name="window"/>.</summary>
    public void ExpectCommit(TimeSpan window) =>
        Volatile.Write(ref _eagerUntil, time.GetTimestamp() + (long)(window.TotalSeconds * time.TimestampFrequency));

    public bool Eager => time.GetTimestamp() < Volatile.Read(ref _eagerUntil);

    /// <summary>The next wake: take it before looking at the outbox, so that a commit made while
    /// the relay looks is not missed (its wake completes the task taken before).</summary>
    public Task Armed => Volatile.Read(ref _wake).Task;

    /// <summary>Completes when <paramref name="armed"/> (taken before the relay last looked) is
    /// woken, or after <paramref name="timeout"/>.</summary>
    public async Task WaitAsync(Task armed, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await armed.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        cancellationToken.ThrowIfCancellationRequested();
    }
}
