namespace Herald.Redis;

public static class RedisHeraldBuilderExtensions
{
    /// <summary>The TTL dedupe store on Redis, for subscriptions that <c>UseDedupe()</c>: marks are
    /// shared by every process using the server and expire there.
    /// <c>h.UseRedisDedupe("localhost:6379", keyPrefix: "orders:dedupe:")</c>.</summary>
    /// <param name="herald">The builder.</param>
    /// <param name="configuration">A StackExchange.Redis configuration naming at least one endpoint;
    /// checked now, connected at the first mark or check, and disposed with the service provider.</param>
    /// <param name="keyPrefix">Put before every key, so that services can share one Redis: 1 to
    /// <see cref="RedisDedupeStore.MaxKeyPrefixLength"/> characters, none of them whitespace or control characters.</param>
    public static HeraldBuilder UseRedisDedupe(this HeraldBuilder herald, string configuration, string keyPrefix = RedisDedupeStore.DefaultKeyPrefix)
    {
        ArgumentNullException.ThrowIfNull(herald);
        // Checks both arguments now; holds nothing until its first call, so nothing leaks if the
        // provider is never built. The provider disposes it, and with it its connection.
        var store = new RedisDedupeStore(configuration, keyPrefix);
        return herald.UseDedupe(_ => store);
    }
}
