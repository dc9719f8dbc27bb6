using System.Data.Common;
using System.Runtime.CompilerServices;
using Herald.Outbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Herald.EntityFrameworkCore.Internal;

/// <summary>Tells the outbox when a DbContext's transaction with outbox events commits, so the
/// relay publishes them at once; and keeps a context from ending an inbox handler's transaction,
/// which Herald commits with the inbox entry. One instance may serve every context built from the
/// same options (context pooling), on many threads: what it keeps is per transaction.</summary>
internal sealed class HeraldOutboxInterceptor : DbTransactionInterceptor
{
    // The outboxes that wrote into each open transaction: the relays to wake on its commit. Weak,
    // so a transaction disposed without commit or rollback leaves nothing behind.
    private readonly ConditionalWeakTable<DbTransaction, TransactionalOutbox[]> _pending = new();

    /// <summary>The interceptor on <paramref name="db"/>'s options, if they have one.</summary>
    public static HeraldOutboxInterceptor? Of(DbContext db) => Of(db.GetService<IDbContextOptions>());

    public static HeraldOutboxInterceptor? Of(IDbContextOptions options)
    {
        if (options.FindExtension<CoreOptionsExtension>()?.Interceptors is not { } interceptors) return null;
        foreach (var interceptor in interceptors)
            if (interceptor is HeraldOutboxInterceptor found) return found;
        return null;
    }

    /// <summary>Events of <paramref name="outbox"/> were written into <paramref name="transaction"/>.
    /// A transaction is used by one thread at a time, so its entry is never updated concurrently.</summary>
    public void Expect(DbTransaction transaction, TransactionalOutbox outbox)
    {
        if (!_pending.TryGetValue(transaction, out var outboxes)) _pending.AddOrUpdate(transaction, [outbox]);
        else if (Array.IndexOf(outboxes, outbox) < 0) _pending.AddOrUpdate(transaction, [.. outboxes, outbox]);
    }

    public override InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        RefuseHandlerTransaction(transaction, "commit");
        return result;
    }

    public override ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result,
        CancellationToken cancellationToken = default)
    {
        RefuseHandlerTransaction(transaction, "commit");
        return ValueTask.FromResult(result);
    }

    public override void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => Wake(transaction);

    public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Wake(transaction);
        return Task.CompletedTask;
    }

    public override InterceptionResult TransactionRollingBack(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        RefuseHandlerTransaction(transaction, "roll back");
        return result;
    }

    public override ValueTask<InterceptionResult> TransactionRollingBackAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result,
        CancellationToken cancellationToken = default)
    {
        RefuseHandlerTransaction(transaction, "roll back");
        return ValueTask.FromResult(result);
    }

    public override void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => _pending.Remove(transaction);

    public override Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        _pending.Remove(transaction);
        return Task.CompletedTask;
    }

    private void Wake(DbTransaction transaction)
    {
        if (!_pending.TryGetValue(transaction, out var outboxes)) return;
        _pending.Remove(transaction);
        foreach (var outbox in outboxes) outbox.NotifyCommitted();
    }

    private static void RefuseHandlerTransaction(DbTransaction transaction, string what)
    {
        if (EventContext.Current is { } context && ReferenceEquals(context.Transaction, transaction))
            throw new InvalidOperationException(
                $"the DbContext tried to {what} the transaction of subscription '{context.Group}''s handler: Herald commits it with the inbox entry and the handler's events when the handler returns, and rolls it back when the handler throws");
    }
}
