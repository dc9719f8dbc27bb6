using System.Threading.Tasks.Sources;

namespace Herald.Bench;

/// <summary>Lets an async consumer wait, without allocating, until a generator thread has issued
/// item <c>index</c>. The generator calls <see cref="Issued"/> after each item; the consumer
/// awaits <see cref="WaitIssuedAsync"/> only when it has caught up.</summary>
public sealed class IssueSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private int _issued;
    private int _waiting;

    /// <summary>Publishes that items below <paramref name="count"/> exist (a full fence, so that
    /// the read of the waiting flag below cannot move before it).</summary>
    public void Issued(int count)
    {
        Interlocked.Exchange(ref _issued, count);
        if (Volatile.Read(ref _waiting) != 0 && Interlocked.Exchange(ref _waiting, 0) != 0) _core.SetResult(true);
    }

    public ValueTask WaitIssuedAsync(int index)
    {
        if (Volatile.Read(ref _issued) > index) return default;
        _core.Reset();
        Interlocked.Exchange(ref _waiting, 1);
        // Issued between the first check and the flag: take the wait back unless the generator
        // already claimed it, in which case its SetResult completes the wait.
        if (Volatile.Read(ref _issued) > index && Interlocked.Exchange(ref _waiting, 0) != 0) return default;
        return new ValueTask(this, _core.Version);
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
