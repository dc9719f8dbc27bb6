using Herald.EntityFrameworkCore.Internal;
using Herald.Outbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Herald.EntityFrameworkCore;

/// <summary>The transactional outbox with a <see cref="DbContext"/>: events written in the
/// transaction of its <c>SaveChangesAsync</c>, so that they are published once, and only if, the
/// changes commit.</summary>
public static class TransactionalOutboxExtensions
{
    /// <summary>Writes the event into the outbox in <paramref name="db"/>'s current transaction,
    /// beside the changes it saves: nothing is published unless that transaction commits. The
    /// transaction is the application's, begun with <c>db.Database.BeginTransactionAsync()</c> and
    /// committed by it: a <c>SaveChangesAsync</c> without one commits by itself, before or without
    /// the events, so publishing without a current transaction is refused. The DbContext must be on
    /// the outbox's database (the one given to <c>h.UseSqlite(...)</c>). With
    /// <see cref="HeraldDbContextOptionsBuilderExtensions.UseHeraldOutbox(DbContextOptionsBuilder)"/>
    /// on the context's options the relay is woken when the transaction commits; without it, it
    /// looks often for a little while and then every <see cref="OutboxOptions.PollInterval"/>. In an
    /// inbox handler, publish with <see cref="EventContext.PublishAsync{T}"/> instead: it carries the
    /// handled event's correlation and causation.</summary>
    /// <example><code>
    /// await using var tx = await db.Database.BeginTransactionAsync(ct);
    /// db.Orders.Add(order);
    /// await db.SaveChangesAsync(ct);
    /// await outbox.PublishAsync(db, new OrderPlaced(order.Id, order.Total), cancellationToken: ct);
    /// await tx.CommitAsync(ct); // the order and its event, or neither
    /// </code></example>
    /// <exception cref="InvalidOperationException"><paramref name="db"/> has no current transaction,
    /// or is not on a relational database.</exception>
    /// <exception cref="ArgumentException"><paramref name="db"/>'s transaction is not on the outbox's
    /// database.</exception>
    public static async ValueTask PublishAsync<T>(this TransactionalOutbox outbox, DbContext db, T evt, PublishOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outbox);
        ArgumentNullException.ThrowIfNull(db);
        var database = db.Database;
        if (!database.IsRelational())
            throw new InvalidOperationException($"the DbContext {db.GetType().Name} uses {database.ProviderName}, which is not a relational database: the outbox writes its events in a database transaction");
        if (database.CurrentTransaction is not { } current)
            throw new InvalidOperationException($"the DbContext {db.GetType().Name} has no current transaction for the outbox to write in: begin one with db.Database.BeginTransactionAsync() before SaveChangesAsync, publish, then commit it, so that the events are written only if the changes are");
        var transaction = current.GetDbTransaction();
        try
        {
            await outbox.PublishAsync(transaction, evt, options, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException e) when (e.ParamName == "transaction")
        {
            // The store refused the transaction (another kind of database): say which context it came from.
            throw new ArgumentException($"the DbContext {db.GetType().Name} ({database.ProviderName}) is not on the outbox's database ({outbox.Store.GetType().Name}): {e.Message}", nameof(db), e);
        }
        HeraldOutboxInterceptor.Of(db)?.Expect(transaction, outbox);
    }
}
