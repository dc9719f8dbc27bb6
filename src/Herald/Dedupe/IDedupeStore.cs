namespace Herald.Dedupe;

/// <summary>A TTL dedupe store, for handlers whose effects live outside a database transaction (a
/// call to another service, a cache): the ids of handled events, each kept for a time to live, as
/// Redis's <c>SET key NX EX</c> keeps them. A subscription with <c>UseDedupe</c> skips an event whose
/// id is marked and marks it once its handler succeeded.</summary>
public interface IDedupeStore
{
    /// <summary>Whether <paramref name="key"/> is marked and its time to live has not run out.</summary>
    ValueTask<bool> ContainsAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Marks <paramref name="key"/> for <paramref name="ttl"/> unless it is marked already;
    /// true when this call marked it.</summary>
    ValueTask<bool> TryMarkAsync(string key, TimeSpan ttl, CancellationToken cancellationToken = default);
}
