using Herald.Transport;

namespace Herald.Internal.Pipeline;

/// <summary>One record on its way through a subscription. Pooled by the dispatcher, which alone
/// creates and recycles them (pipeline benchmark: a new one per record was 175 bytes of garbage).</summary>
internal sealed class Work
{
    public TransportRecord Record;
    public Lane Lane = null!;
    public bool IsRetry;
    public long Seq;
    public int Size;
    public BatchScope? Batch;

    /// <summary>Bumped on every reuse, so a due timer of an earlier use cannot wake this one.</summary>
    public int Generation;

    // Set from the headers of a retry-topic record.
    public long OriginalOffset;
    public int Round;
    public int PriorAttempts;
    public long DueMs;
    /// <summary>For a replayed dead letter, the dead-letter topic's end offset when it was replayed; -1 otherwise.</summary>
    public long ReplayMark = -1;

    /// <summary>A main-topic record that runs outside its key's queue: its key's head waits for a
    /// retry due time, and this record (which can only be diverted behind it) must not hold the
    /// main partition meanwhile.</summary>
    public bool Detached;
    public long FirstFailureMs;

    /// <summary>A done marker in the retry topic, not an event.</summary>
    public bool IsMarker;

    /// <summary>Waiting for its due time (a retry-topic record), not running.</summary>
    public ITimer? DueTimer;

    // The event type, resolved once when processing starts.
    public ReadOnlyMemory<byte>? TypeName;
    public EventMapping? Mapping;
    public Subscriptions.HandlerBinding? Binding;

    public ReadOnlyMemory<byte>? Key => Record.Key;

    public void Init(in TransportRecord record, Lane lane, bool isRetry, long seq, int size, BatchScope? batch)
    {
        Record = record;
        Lane = lane;
        IsRetry = isRetry;
        Seq = seq;
        Size = size;
        Batch = batch;
        OriginalOffset = record.Offset;
        Round = 0;
        PriorAttempts = 0;
        DueMs = 0;
        ReplayMark = -1;
        Detached = false;
        FirstFailureMs = 0;
        IsMarker = false;
        DueTimer = null;
    }

    public void Clear()
    {
        var lease = Record.Lease;
        Record = default; // cleared first: a second Clear must not release again
        lease?.Release();
        Lane = null!;
        Batch = null;
        DueTimer = null;
        TypeName = null;
        Mapping = null;
        Binding = null;
        Generation++;
    }
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
