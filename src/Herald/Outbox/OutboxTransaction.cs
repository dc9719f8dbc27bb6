using System.Data.Common;

namespace Herald.Outbox;

/// <summary>A transaction on the outbox's database (<see cref="TransactionalOutbox.BeginAsync"/>):
/// the application's state change and the events it publishes commit together, and the relay is
/// woken on commit. Disposing it without committing rolls both back: nothing is published. Not
/// for use by several threads at once, as its connection is not.</summary>
public sealed class OutboxTransaction : IAsyncDisposable
{
    private readonly TransactionalOutbox _outbox;
    private bool _ended;

    internal OutboxTransaction(TransactionalOutbox outbox, DbConnection connection, DbTransaction transaction)
    {
        _outbox = outbox;
        Connection = connection;
        Transaction = transaction;
    }

    public DbConnection Connection { get; }

    public DbTransaction Transaction { get; }

    /// <summary>A command on this transaction, for the application's own state change.</summary>
    public DbCommand CreateCommand(string sql)
    {
        ObjectDisposedException.ThrowIf(_ended, this);
        var command = Connection.CreateCommand();
        command.Transaction = Transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>Writes the event into the outbox in this transaction.</summary>
    public ValueTask PublishAsync<T>(T evt, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_ended, this);
        return _outbox.AddAsync(Transaction, evt, options, cancellationToken);
    }

    /// <summary>Writes the events into the outbox in this transaction, in order, with as few round
    /// trips to the database as the store allows (PostgreSQL: one per thousand events).</summary>
    public ValueTask PublishManyAsync<T>(IEnumerable<T> events, PublishOptions? options = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_ended, this);
        return _outbox.AddManyAsync(Transaction, events, options, cancellationToken);
    }

    /// <summary>Commits the state change and its events together, then wakes the relay.</summary>
    public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_ended, this);
        await Transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        _ended = true;
        _outbox.NotifyCommitted();
    }

    /// <summary>Rolls back unless committed, and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        _ended = true;
        await Transaction.DisposeAsync().ConfigureAwait(false);
        await Connection.DisposeAsync().ConfigureAwait(false);
    }
}
