using System.Data.Common;
using Herald.Internal;
using Herald.Internal.Relay;

namespace Herald.Outbox;

/// <summary>The transactional outbox: events written in the same database transaction as the state
/// change that causes them, in the service's own database (Herald's store), and published by the
/// relay once, and only if, that transaction commits. From DI once a store is configured
/// (<c>h.UseSqlite(...)</c>, <c>h.UsePostgres(...)</c>).</summary>
/// <example><code>
/// await using var tx = await outbox.BeginAsync();
/// await using (var update = tx.CreateCommand("UPDATE stock SET held = held + 1 WHERE sku = 'a'")) await update.ExecuteNonQueryAsync();
/// await tx.PublishAsync(new StockReserved(orderId, "a", 1));
/// await tx.CommitAsync(); // both or neither; the relay is woken
/// </code></example>
public sealed class TransactionalOutbox
{
    private readonly Publisher _publisher;
    private readonly OutboxSignal _signal;
    private readonly TimeProvider _time;

    internal TransactionalOutbox(Publisher publisher, IOutboxStore store, OutboxSignal signal, TimeProvider time, OutboxOptions options)
    {
        _publisher = publisher;
        Store = store;
        _signal = signal;
        _time = time;
        Options = options;
    }

    /// <summary>The database the outbox lives in.</summary>
    public IOutboxStore Store { get; }

    internal OutboxOptions Options { get; }

    /// <summary>Opens a connection to the store's database and begins a transaction on it: make the
    /// state change on it, publish through it, commit it. The relay is woken on commit.</summary>
    public async ValueTask<OutboxTransaction> BeginAsync(CancellationToken cancellationToken = default)
    {
        var connection = await Store.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            return new OutboxTransaction(this, connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes the event into the outbox inside <paramref name="transaction"/>, an open
    /// transaction on the store's database that the application commits itself: nothing is
    /// published unless it commits. Call <see cref="NotifyCommitted"/> after the commit to have it
    /// relayed at once; otherwise the relay looks every <see cref="OutboxOptions.EagerPollInterval"/>
    /// for a little while, then every <see cref="OutboxOptions.PollInterval"/> (PostgreSQL tells it
    /// on commit by itself).</summary>
    public async ValueTask PublishAsync<T>(DbTransaction transaction, T evt, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        await AddAsync(transaction, evt, options, cancellationToken).ConfigureAwait(false);
        _signal.ExpectCommit(TimeSpan.FromSeconds(2));
    }

    /// <summary>Writes the events into the outbox inside <paramref name="transaction"/>, in order, as
    /// <see cref="PublishAsync{T}(DbTransaction, T, PublishOptions?, CancellationToken)"/> does each,
    /// with as few round trips to the database as the store allows.</summary>
    public async ValueTask PublishManyAsync<T>(DbTransaction transaction, IEnumerable<T> events, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        await AddManyAsync(transaction, events, options, cancellationToken).ConfigureAwait(false);
        _signal.ExpectCommit(TimeSpan.FromSeconds(2));
    }

    /// <summary>Builds the event as a publish would (key, payload, CloudEvents headers with its
    /// id and time fixed now, correlation and causation inside a handler) and adds it.</summary>
    internal ValueTask AddAsync<T>(DbTransaction transaction, T evt, PublishOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var message = _publisher.BuildForOutbox(evt, options, _time.GetUtcNow().ToUnixTimeMilliseconds());
        return Store.AddAsync(transaction, [message], cancellationToken);
    }

    /// <summary>Builds each event as <see cref="AddAsync{T}"/> does and adds them with one store call
    /// per <see cref="AddChunk"/> events (PostgreSQL: one round trip each, not one per event).</summary>
    internal async ValueTask AddManyAsync<T>(DbTransaction transaction, IEnumerable<T> events, PublishOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(events);
        var chunk = new List<OutboxMessage>();
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var evt in events)
        {
            chunk.Add(_publisher.BuildForOutbox(evt, options, now));
            if (chunk.Count < AddChunk) continue;
            await Store.AddAsync(transaction, chunk.ToArray(), cancellationToken).ConfigureAwait(false);
            chunk.Clear();
        }
        if (chunk.Count > 0) await Store.AddAsync(transaction, chunk.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The most events handed to the store at once: bounds what a PublishMany holds in memory.</summary>
    internal const int AddChunk = 1000;

    /// <summary>Tells the relay that a transaction with outbox events has committed: it relays them now.</summary>
    public void NotifyCommitted() => _signal.Wake();
}
