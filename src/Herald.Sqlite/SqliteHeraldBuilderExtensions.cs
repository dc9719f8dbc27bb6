using Herald.Dedupe;
using Herald.Inbox;
using Herald.Outbox;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Sqlite;

public static class SqliteHeraldBuilderExtensions
{
    /// <summary>Herald's store in this SQLite database, the service's own: the transactional outbox
    /// (<see cref="TransactionalOutbox"/> in DI, and its relay) and the inbox for subscriptions that
    /// <c>UseInbox()</c>. <c>h.UseSqlite("Data Source=orders.db")</c>. The tables are created or
    /// migrated on start; <see cref="SqliteStore"/> is in DI too.</summary>
    public static HeraldBuilder UseSqlite(this HeraldBuilder herald, string connectionString, Action<OutboxOptions>? outbox = null,
        Action<InboxOptions>? inbox = null, string tablePrefix = "herald_")
    {
        ArgumentNullException.ThrowIfNull(herald);
        var store = new SqliteStore(connectionString, tablePrefix); // checks both arguments now
        return herald.UseStore(_ => store, outbox, inbox);
    }

    /// <summary>The TTL dedupe store in a table of this SQLite database, for subscriptions that
    /// <c>UseDedupe()</c>; marks outlive restarts and are shared by every process using the file.</summary>
    public static HeraldBuilder UseSqliteDedupe(this HeraldBuilder herald, string connectionString, string tableName = "herald_dedupe")
    {
        ArgumentNullException.ThrowIfNull(herald);
        var store = new SqliteDedupeStore(connectionString, tableName);
        return herald.UseDedupe(_ => store);
    }
}
