using Herald.EntityFrameworkCore.Internal;
using Microsoft.EntityFrameworkCore;

namespace Herald.EntityFrameworkCore;

public static class HeraldDbContextOptionsBuilderExtensions
{
    /// <summary>Wakes the outbox relay as soon as a transaction of this DbContext into which
    /// <see cref="TransactionalOutboxExtensions.PublishAsync{T}"/> wrote events commits (through
    /// <c>tx.CommitAsync()</c> or <c>db.Database.CommitTransactionAsync()</c>), so they are relayed at
    /// once rather than at its next poll. Also refuses to commit or roll back an inbox handler's
    /// transaction through the context (<see cref="EventContextDbContextExtensions.UseHandlerTransactionAsync"/>):
    /// Herald does that. Adding it twice adds it once.</summary>
    /// <example><code>
    /// services.AddDbContext&lt;ShopDb&gt;(o => o.UseSqlite("Data Source=shop.db").UseHeraldOutbox());
    /// services.AddHerald(h => h.UseSqlite("Data Source=shop.db"));
    /// </code></example>
    public static DbContextOptionsBuilder UseHeraldOutbox(this DbContextOptionsBuilder options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return HeraldOutboxInterceptor.Of(options.Options) is null ? options.AddInterceptors(new HeraldOutboxInterceptor()) : options;
    }

    /// <inheritdoc cref="UseHeraldOutbox(DbContextOptionsBuilder)"/>
    public static DbContextOptionsBuilder<TContext> UseHeraldOutbox<TContext>(this DbContextOptionsBuilder<TContext> options)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)UseHeraldOutbox((DbContextOptionsBuilder)options);
}
