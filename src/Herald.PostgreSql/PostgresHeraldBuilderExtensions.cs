using Herald.Inbox;
using Herald.Outbox;

namespace Herald.PostgreSql;

public static class PostgresHeraldBuilderExtensions
{
    /// <summary>Herald's store in this PostgreSQL database, the service's own: the transactional
    /// outbox (<see cref="TransactionalOutbox"/> in DI, and its relay, woken by NOTIFY from any
    /// process and led by whoever holds an advisory lock) and the inbox for subscriptions that
    /// <c>UseInbox()</c>. <c>h.UsePostgres("Host=db;Database=orders;Username=orders;Password=...")</c>.
    /// The tables (<c>"schema"."{tablePrefix}outbox"</c>...) are created or migrated on start;
    /// <see cref="PostgresStore"/> is in DI too, and closes its connections when the container is disposed.</summary>
    public static HeraldBuilder UsePostgres(this HeraldBuilder herald, string connectionString, Action<OutboxOptions>? outbox = null,
        Action<InboxOptions>? inbox = null, string schema = "public", string tablePrefix = "herald_")
    {
        ArgumentNullException.ThrowIfNull(herald);
        var store = new PostgresStore(connectionString, schema, tablePrefix); // checks the arguments now
        return herald.UseStore(_ => store, outbox, inbox);
    }
}
