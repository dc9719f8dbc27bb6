namespace Herald.Log.Tests.Faults;

/// <summary>Holds the first thread that calls <see cref="Hold"/> (from a
/// <see cref="FaultInjectingFileSystem.BeforeOperation"/> hook) until the test calls
/// <see cref="Release"/>: the test awaits <see cref="Reached"/>, does what must happen while that
/// thread stands at that exact point, then lets it go on. Later calls pass straight through.</summary>
internal sealed class FilePause : IDisposable
{
    private static readonly TimeSpan MaxHold = TimeSpan.FromSeconds(30);
    private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ManualResetEventSlim _released = new();
    private int _held;

    /// <summary>Completes once a thread is held.</summary>
    public Task Reached => _reached.Task;

    public void Hold()
    {
        if (Interlocked.Exchange(ref _held, 1) != 0) return;
        _reached.TrySetResult();
        // Bounded, so that a test that fails before releasing cannot hang the log's writer forever.
        if (!_released.Wait(MaxHold)) throw new TimeoutException($"the test did not release the held file operation within {MaxHold}");
    }

    public void Release() => _released.Set();

    /// <summary>Releases the held thread, if any (a failing test must not leave it waiting).</summary>
    public void Dispose() => Release();
}
