using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Herald.EntityFrameworkCore;

/// <summary>Inbox handlers with a <see cref="DbContext"/>: the context's changes commit with the
/// inbox entry of the event handled and the events the handler publishes.</summary>
public static class EventContextDbContextExtensions
{
    /// <summary>Makes <paramref name="db"/> work on the handler's connection and in its transaction
    /// (<see cref="EventContext.Connection"/>, <see cref="EventContext.Transaction"/>), in a
    /// subscription with <see cref="Subscriptions.SubscriptionBuilder.UseInbox"/>: its
    /// <c>SaveChangesAsync</c> then writes without committing, and the changes commit with the inbox
    /// entry and the handler's events when the handler returns, or roll back when it throws (a retry
    /// starts clean). The context neither commits nor closes that connection; do not commit or roll
    /// back through it. Call it before using the context, on a context of this attempt's own, such
    /// as one from <see cref="EventContext.Services"/> (each attempt has a fresh scope): a context
    /// with a transaction or an open connection of its own, or one that served another event, is
    /// refused, and so is one whose execution strategy retries (Herald retries the handler instead).
    /// The context must use the store's database provider (Microsoft.Data.Sqlite for
    /// <c>h.UseSqlite(...)</c>), and its tables must be in the store's database. Calling it again in
    /// the same attempt does nothing. On SQLite, EF registers the SQL functions some queries need
    /// (decimal comparison and arithmetic, <c>Regex.IsMatch</c>) only on connections it opens itself
    /// or is given in the options: a context from DI joined to the handler's connection cannot run
    /// those queries, and one built for the attempt with
    /// <c>new DbContextOptionsBuilder&lt;ShopDb&gt;().UseSqlite(ctx.Connection!)</c> can.</summary>
    /// <example><code>
    /// h.Subscribe("billing", s => s.UseInbox().Handle&lt;OrderPlaced&gt;(async (e, ctx, ct) =>
    /// {
    ///     var db = ctx.Services.GetRequiredService&lt;ShopDb&gt;();
    ///     await db.UseHandlerTransactionAsync(ctx, ct);
    ///     db.Charges.Add(new Charge { OrderId = e.OrderId, Amount = e.Amount });
    ///     await db.SaveChangesAsync(ct);
    ///     await ctx.PublishAsync(new OrderCharged(e.OrderId, e.Amount), cancellationToken: ct);
    /// })); // the charge, the inbox entry and OrderCharged commit together
    /// </code></example>
    /// <exception cref="InvalidOperationException">The subscription does not use the inbox, or the
    /// context cannot join the handler's transaction (the message says why).</exception>
    public static async ValueTask UseHandlerTransactionAsync(this DbContext db, EventContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(context);
        var name = db.GetType().Name;
        if (context.Connection is not { } connection || context.Transaction is not { } transaction)
            throw new InvalidOperationException(
                $"the handler of subscription '{context.Group}' has no transaction for the DbContext {name} to join: the subscription does not use the inbox (add UseInbox() to it to commit the handler's changes with the inbox entry and its events, or let the DbContext commit by itself with SaveChangesAsync), or the handler has returned");
        var database = db.Database;
        if (!database.IsRelational())
            throw new InvalidOperationException($"the DbContext {name} uses {database.ProviderName}, which is not a relational database: it cannot join the handler's transaction");
        if (database.CurrentTransaction is { } current)
        {
            if (ReferenceEquals(current.GetDbTransaction(), transaction)) return; // joined already
            throw new InvalidOperationException(
                $"the DbContext {name} is in another transaction, its own (BeginTransactionAsync) or another event's (a context shared by several events: a singleton, or one from a scope with HandlerScope.PerBatch): use a context of this attempt's own, such as ctx.Services.GetRequiredService<{name}>() with HandlerScope.PerEvent, and join the handler's transaction before anything else");
        }
        if (database.CreateExecutionStrategy().RetriesOnFailure)
            throw new InvalidOperationException(
                $"the DbContext {name} has an execution strategy that retries on failure (such as EnableRetryOnFailure), which cannot retry inside the handler's transaction: Herald retries the handler instead; give the context used in handlers the default strategy");
        // With neither a connection string nor a connection, the context has no connection of its own to check.
        if (database.GetConnectionString() is not null && database.GetDbConnection() is var own && !ReferenceEquals(own, connection))
        {
            if (own.GetType() != connection.GetType())
                throw new InvalidOperationException(
                    $"the DbContext {name} uses {database.ProviderName}, whose connections ({own.GetType().FullName}) are not those of Herald's store ({connection.GetType().FullName}): the context must be on the store's database, with its provider");
            if (own.State != System.Data.ConnectionState.Closed)
                throw new InvalidOperationException(
                    $"the DbContext {name} has a connection of its own open: join the handler's transaction before the context opens one (OpenConnectionAsync, or a query still being read)");
        }
        database.SetDbConnection(connection, contextOwnsConnection: false);
        await database.UseTransactionAsync(transaction, cancellationToken).ConfigureAwait(false);
    }
}
