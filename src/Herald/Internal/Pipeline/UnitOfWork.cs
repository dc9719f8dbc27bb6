using System.Data.Common;
using Herald.Inbox;
using Herald.Outbox;

namespace Herald.Internal.Pipeline;

/// <summary>One attempt at handling an event effectively once: a transaction on Herald's store in
/// which the inbox records the event, the handler makes its effects (through the context's
/// connection and transaction) and its publishes go to the outbox. Committed when the handler
/// succeeds, rolled back otherwise, so that a retry starts clean.</summary>
internal sealed class UnitOfWork : IAsyncDisposable
{
    private readonly TransactionalOutbox _outbox;
    private readonly SemaphoreSlim _gate = new(1, 1); // one command at a time on the connection
    private bool _ended;
    private bool _published;

    private UnitOfWork(TransactionalOutbox outbox, DbConnection connection, DbTransaction transaction)
    {
        _outbox = outbox;
        Connection = connection;
        Transaction = transaction;
    }

    public DbConnection Connection { get; }

    public DbTransaction Transaction { get; }

    public static async ValueTask<UnitOfWork> BeginAsync(IInboxStore inbox, TransactionalOutbox outbox, CancellationToken cancellationToken)
    {
        var connection = await inbox.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            return new UnitOfWork(outbox, connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes a published event into the outbox in this transaction.</summary>
    public async ValueTask PublishAsync<T>(T evt, PublishOptions? options, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_ended)
                throw new InvalidOperationException("the handler's transaction has ended: publish while the handler runs, so that the event commits with its effects");
            await _outbox.AddAsync(Transaction, evt, options, cancellationToken).ConfigureAwait(false);
            _published = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Commits the inbox entry, the handler's effects and its outbox events; wakes the
    /// relay when there are events.</summary>
    public async ValueTask CommitAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _ended = true;
            await Transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        if (_published) _outbox.NotifyCommitted();
    }

    /// <summary>Rolls back unless committed, and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _ended = true;
            await Transaction.DisposeAsync().ConfigureAwait(false);
            await Connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }
}
