using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;

namespace Herald.Log.Partitions;

/// <summary>One pending append: its records (one, many, or a ready-made batch) and the pooled
/// completion the appender awaits. Pooled per partition so that a steady stream of appends
/// allocates nothing per record (bench scenario log-append).</summary>
internal sealed class AppendRequest : IValueTaskSource<long>, IValueTaskSource
{
    private const int MaxPooled = 16384; // many outstanding appends complete in bursts (pipeline benchmark)
    // Continuations run inline where the request is completed: the writer never completes one
    // itself but hands each acknowledged group to one thread-pool item that completes them all
    // (LogPartition.CompleteGroup), one hop per group instead of one per append (pipeline benchmark).
    private ManualResetValueTaskSourceCore<long> _core = new() { RunContinuationsAsynchronously = false };
    private ConcurrentQueue<AppendRequest>? _pool;

    public NewRecord Single;
    public IReadOnlyList<NewRecord>? Many;
    public ReadOnlyMemory<byte> RawBatch;
    public AppendKind Kind;
    public int Bytes;
    public long BaseOffset;

    public static AppendRequest Rent(ConcurrentQueue<AppendRequest> pool)
    {
        if (!pool.TryDequeue(out var request)) request = new AppendRequest();
        request._pool = pool;
        return request;
    }

    public int RecordCount => Kind switch
    {
        AppendKind.Single => 1,
        AppendKind.Many => Many!.Count,
        _ => 0,
    };

    public ValueTask<long> Task => new(this, _core.Version);

    /// <summary>The same completion without the offset (for appenders that only wait).</summary>
    public ValueTask UntypedTask => new(this, _core.Version);

    public void Complete(long baseOffset)
    {
        ReleaseOwners();
        _core.SetResult(baseOffset);
    }

    public void Fail(Exception error)
    {
        ReleaseOwners();
        _core.SetException(error);
    }

    private bool _released;

    /// <summary>Disposes the records' owners (once): the writer has copied them, or they are given up.</summary>
    public void ReleaseOwners()
    {
        if (_released) return;
        _released = true;
        switch (Kind)
        {
            case AppendKind.Single:
                Single.Owner?.Dispose();
                break;
            case AppendKind.Many:
                for (var i = 0; i < Many!.Count; i++) Many[i].Owner?.Dispose();
                break;
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public long GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            Recycle();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void Recycle()
    {
        var pool = _pool;
        _core.Reset();
        _released = false;
        Single = default;
        Many = null;
        RawBatch = default;
        _pool = null;
        if (pool is not null && pool.Count < MaxPooled) pool.Enqueue(this);
    }
}

internal enum AppendKind : byte
{
    Single,
    Many,
    Raw,
}
