using System.Data.Common;

namespace Herald.Inbox;

/// <summary>The inbox table of a service's own database: the id of each event a consumer group has
/// handled, written in the same transaction as the handler's effects and its outbox events, so that
/// a redelivered event is recognised and acknowledged without running the handler again.</summary>
public interface IInboxStore
{
    /// <summary>An open connection to the store's database (the tables initialized).</summary>
    ValueTask<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken = default);

    /// <summary>Records in <paramref name="transaction"/> that <paramref name="group"/> handles the
    /// event <paramref name="eventId"/>; false when that is recorded already (a redelivery of an
    /// event whose handling committed). The entry exists only if the transaction commits.</summary>
    ValueTask<bool> TryRecordAsync(DbTransaction transaction, string group, string eventId, long nowMs, CancellationToken cancellationToken = default);

    /// <summary>Removes entries recorded before <paramref name="olderThanMs"/>, and the oldest of any
    /// beyond the newest <paramref name="keep"/>; returns how many went. Bounded work per call
    /// (<paramref name="maxRows"/>), so the caller repeats while it returns that many.</summary>
    ValueTask<long> PurgeAsync(long olderThanMs, long keep, int maxRows, CancellationToken cancellationToken = default);
}
