using Microsoft.Extensions.DependencyInjection;

namespace Herald;

/// <summary>What a handler knows about the event it handles, and how it publishes follow-up
/// events: <see cref="PublishAsync{T}"/> carries this event's correlation id and records this event
/// as the cause.</summary>
public sealed class EventContext
{
    private readonly Internal.Pipeline.Work _work;
    private readonly Internal.Pipeline.HandlerEnvironment _env;
    private readonly Internal.Pipeline.BatchScope? _batch; // not read from the work: it may serve another record after Finish
    private IServiceScope? _scope;
    private IServiceProvider? _services;
    private Envelope? _envelope;

    /// <summary>The envelope is made when first asked for: most handlers never look at it
    /// (pipeline benchmark: one allocation per event less). The record is read from the pipeline's
    /// work item, which is reused only after <see cref="Finish"/>: nothing reads it after that.</summary>
    internal EventContext(Internal.Pipeline.Work work, Internal.Pipeline.HandlerEnvironment env, int attempt)
    {
        _work = work;
        _env = env;
        _batch = work.Batch;
        Attempt = attempt;
    }

    private bool _finished; // under lock (this), with _envelope

    /// <summary>The event's metadata. Read it while the handler runs: once the handler has
    /// finished, the record's memory is reused, so an envelope first asked for later cannot be made
    /// (one made earlier stays valid: it holds a copy of the key and headers).</summary>
    public Envelope Envelope => EnvelopeIfAvailable
        ?? throw new InvalidOperationException("the EventContext's handler has finished: read its Envelope while handling the event");

    /// <summary>The envelope, or null once the handler has finished without anyone asking for it
    /// (a background task that outlives its handler): follow-up events then carry no causation.</summary>
    internal Envelope? EnvelopeIfAvailable
    {
        get
        {
            if (Volatile.Read(ref _envelope) is { } made) return made;
            // Made under the lock that Finish takes: a background thread either copies the record
            // before the pipeline lets its memory go, or sees that it is gone.
            lock (this)
            {
                if (_envelope is not null || _finished) return _envelope;
                var work = _work;
                return _envelope = work.IsRetry
                    ? new Envelope(work.Record, work.Lane.Topic, work.Lane.Partition, work.OriginalOffset)
                    : new Envelope(work.Record);
            }
        }
    }

    /// <summary>The handler is done with the record, whose memory is about to be reused.</summary>
    internal void Finish()
    {
        lock (this) _finished = true;
    }

    // The event being handled on this async flow, so that a handler publishing through an injected
    // IEventPublisher (not only through PublishAsync below) carries correlation and causation too.
    private static readonly AsyncLocal<EventContext?> s_current = new();

    /// <summary>The context of the event whose handler is running on this async flow, if any.</summary>
    public static EventContext? Current
    {
        get => s_current.Value;
        internal set => s_current.Value = value;
    }

    /// <summary>1 for the first delivery; counts every attempt, immediate and delayed.</summary>
    public int Attempt { get; internal set; }

    /// <summary>The consumer group handling the event.</summary>
    public string Group => _env.Group;

    /// <summary>Cancelled when the host stops and the drain timeout has passed.</summary>
    public CancellationToken CancellationToken => _env.CancellationToken;

    /// <summary>Services from a DI scope for this event (or its batch), created when first used.</summary>
    public IServiceProvider Services
    {
        get
        {
            if (_services is not null) return _services;
            if (_batch is not null) return _services = _batch.Services;
            _scope = _env.Root.CreateScope();
            return _services = _scope.ServiceProvider;
        }
    }

    /// <summary>Publishes a follow-up event with this event's correlation id and this event as its
    /// cause. In a subscription with the inbox (<see cref="Subscriptions.SubscriptionBuilder.UseInbox"/>)
    /// the event goes into the outbox in the handler's transaction, and is published only if the
    /// handler's effects commit.</summary>
    public ValueTask PublishAsync<T>(T evt, string? key = null, CancellationToken cancellationToken = default)
    {
        var options = EnvelopeIfAvailable is { } cause
            ? new PublishOptions { Key = key, CorrelationId = cause.CorrelationId, CausationId = cause.Id }
            : new PublishOptions { Key = key };
        return UnitOfWork is { } unit ? unit.PublishAsync(evt, options, cancellationToken) : _env.Publisher.PublishAsync(evt, options, cancellationToken);
    }

    /// <summary>The attempt's transaction on Herald's store, in a subscription with the inbox; null otherwise.</summary>
    internal Internal.Pipeline.UnitOfWork? UnitOfWork { get; set; }

    /// <summary>In a subscription with the inbox: the connection to the service's database (Herald's
    /// store) that the handler makes its effects on, inside <see cref="Transaction"/>. Null in other
    /// subscriptions. Run one command at a time on it.</summary>
    public System.Data.Common.DbConnection? Connection => UnitOfWork?.Connection;

    /// <summary>In a subscription with the inbox: the transaction that commits the handler's effects,
    /// the events it publishes and the inbox entry for this event together, once the handler
    /// returns; it rolls back if the handler throws. Null in other subscriptions.</summary>
    public System.Data.Common.DbTransaction? Transaction => UnitOfWork?.Transaction;

    /// <summary>Whether a DI scope of this event's own was created (and needs disposing).</summary>
    internal bool HasScope => _scope is not null;

    internal ValueTask DisposeScopeAsync()
    {
        var scope = _scope;
        if (scope is null) return ValueTask.CompletedTask;
        _scope = null;
        _services = null; // the next use creates a new scope
        return scope is IAsyncDisposable a ? a.DisposeAsync() : Dispose(scope);

        static ValueTask Dispose(IDisposable? d)
        {
            d?.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
