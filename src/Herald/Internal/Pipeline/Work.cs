using Herald.Transport;

namespace Herald.Internal.Pipeline;

/// <summary>One record on its way through a subscription.</summary>
internal sealed class Work(TransportRecord record, Lane lane, bool isRetry, long seq, int size, BatchScope? batch)
{
    public readonly TransportRecord Record = record;
    public readonly Lane Lane = lane;
    public readonly bool IsRetry = isRetry;
    public readonly long Seq = seq;
    public readonly int Size = size;
    public readonly BatchScope? Batch = batch;

    // Set from the headers of a retry-topic record.
    public long OriginalOffset = record.Offset;
    public int Round;
    public int PriorAttempts;
    public long DueMs;
    public bool Replay;
    public long FirstFailureMs;

    /// <summary>Waiting for its due time (a retry-topic record), not running.</summary>
    public ITimer? DueTimer;

    public ReadOnlyMemory<byte>? Key => Record.Key;
}

/// <summary>A DI scope shared by the records of one fetched batch (HandlerScope.PerBatch),
/// disposed when the last of them finishes.</summary>
internal sealed class BatchScope(IServiceProvider root)
{
    private Microsoft.Extensions.DependencyInjection.IServiceScope? _scope;
    private int _remaining = 1; // the dispatcher's own reference until the batch is fully enqueued

    private readonly object _lock = new();

    /// <summary>The batch's scope, created when a handler first needs it (handlers of several keys may ask at once).</summary>
    public IServiceProvider Services
    {
        get
        {
            lock (_lock) return (_scope ??= Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.CreateScope(root)).ServiceProvider;
        }
    }

    public void AddRef() => _remaining++;

    /// <summary>Drops a reference; disposes the scope with the last one. Dispatcher thread only.</summary>
    public void Release()
    {
        if (--_remaining != 0) return;
        lock (_lock) _scope?.Dispose();
    }
}
