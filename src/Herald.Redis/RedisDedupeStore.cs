using System.Net;
using Herald.Dedupe;
using StackExchange.Redis;

namespace Herald.Redis;

/// <summary>
/// An <see cref="IDedupeStore"/> on Redis, shared by every process and service that uses the same
/// server: a mark is <c>SET prefix+key 1 NX PX ttl</c>, a check is <c>EXISTS prefix+key</c>, and
/// Redis expires the keys itself, so nothing needs purging.
/// </summary>
/// <remarks>
/// <para>Every key carries the store's prefix, so services can share one Redis: give each its own
/// (and let no prefix be the start of another's). Keys compare exactly, byte for byte in UTF-8.</para>
/// <para>A mark is one command, atomic on the server: of concurrent marks of one key, from any number
/// of stores, exactly one wins, and a refused mark leaves the first one's expiry alone. Time to live
/// is rounded up to a whole millisecond and runs on the server's clock.</para>
/// <para>Built from a configuration string, the store owns its connection: it connects at its first
/// call (so building it never blocks) and disposes the connection with itself. A failed connect is
/// not remembered; the next call tries again. Built from an <see cref="IConnectionMultiplexer"/>, it
/// uses and leaves the caller's connection. Either way a connection failure reaches the caller as
/// StackExchange.Redis's exception (<see cref="RedisConnectionException"/>,
/// <see cref="RedisTimeoutException"/>); the store never answers without the server.</para>
/// <para>StackExchange.Redis commands take no <see cref="CancellationToken"/>: cancelling a call stops
/// the wait for its reply, and a mark already sent may still be made.</para>
/// </remarks>
public sealed class RedisDedupeStore : IDedupeStore, IAsyncDisposable, IDisposable
{
    /// <summary>The key prefix when none is given.</summary>
    public const string DefaultKeyPrefix = "herald:dedupe:";

    /// <summary>The longest key prefix accepted.</summary>
    public const int MaxKeyPrefixLength = 256;

    // The largest whole number of milliseconds a TimeSpan holds: a longer time to live saturates.
    // Redis accepts it (PX up to what fits in a 64-bit Unix time in milliseconds).
    private static readonly long MaxTtlMs = TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMillisecond;

    private static readonly RedisValue Marked = 1;

    private readonly string _prefix;
    private readonly ConfigurationOptions? _configuration; // set when the store owns its connection
    private readonly Lock _connectLock = new();
    private IDatabase? _database;
    private Task<IDatabase>? _connecting;
    private IConnectionMultiplexer? _owned;
    private int _disposed;

    /// <summary>A store on <paramref name="connection"/>, which stays the caller's: disposing the
    /// store leaves it open.</summary>
    /// <param name="connection">The connection; its default database holds the marks.</param>
    /// <param name="keyPrefix">Put before every key: 1 to <see cref="MaxKeyPrefixLength"/> characters,
    /// none of them whitespace or control characters.</param>
    public RedisDedupeStore(IConnectionMultiplexer connection, string keyPrefix = DefaultKeyPrefix)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _prefix = ValidateKeyPrefix(keyPrefix);
        _database = connection.GetDatabase();
    }

    /// <summary>A store with a connection of its own, made from <paramref name="configuration"/> at the
    /// first call and disposed with the store.</summary>
    /// <param name="configuration">A StackExchange.Redis configuration naming at least one endpoint,
    /// such as <c>localhost:6379</c> or <c>redis1:6379,redis2:6379,password=...,connectTimeout=2000</c>.
    /// Its <c>defaultDatabase</c> holds the marks.</param>
    /// <param name="keyPrefix">Put before every key: 1 to <see cref="MaxKeyPrefixLength"/> characters,
    /// none of them whitespace or control characters.</param>
    public RedisDedupeStore(string configuration, string keyPrefix = DefaultKeyPrefix)
    {
        _configuration = ParseConfiguration(configuration);
        _prefix = ValidateKeyPrefix(keyPrefix);
    }

    /// <inheritdoc />
    public ValueTask<bool> TryMarkAsync(string key, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (ttl <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "The time to live of a dedupe mark must be positive");
        return TryMarkCoreAsync(key, ttl, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        return ContainsCoreAsync(key, cancellationToken);
    }

    /// <summary>Disposes the connection when the store owns it; calls after this throw
    /// <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (Interlocked.Exchange(ref _owned, null) is { } owned) await owned.DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc cref="DisposeAsync"/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Interlocked.Exchange(ref _owned, null)?.Dispose();
    }

    private async ValueTask<bool> TryMarkCoreAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        IDatabase database = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        // SET NX PX: sets an absent key (an expired one is absent) and leaves a present one, value
        // and expiry, as it is. Plain GetDatabase() commands are not retried, so the answer is this
        // call's own: a replayed SET NX would answer false for a mark it made itself.
        return await database.StringSetAsync(Key(key), Marked, WholeMilliseconds(ttl), When.NotExists).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<bool> ContainsCoreAsync(string key, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        IDatabase database = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        return await database.KeyExistsAsync(Key(key)).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private RedisKey Key(string key) => string.Concat(_prefix, key);

    private ValueTask<IDatabase> DatabaseAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return Volatile.Read(ref _database) is { } database
            ? new ValueTask<IDatabase>(database)
            : new ValueTask<IDatabase>(ConnectOnce().WaitAsync(cancellationToken));
    }

    /// <summary>The connect in progress, or a new one when there is none or the last one failed:
    /// concurrent first calls share one connect.</summary>
    private Task<IDatabase> ConnectOnce()
    {
        lock (_connectLock)
        {
            if (_connecting is null || _connecting.IsFaulted || _connecting.IsCanceled) _connecting = ConnectAsync();
            return _connecting;
        }
    }

    private async Task<IDatabase> ConnectAsync()
    {
        // Bounded by the configuration's connectTimeout (5 s unless it says otherwise). It fails with
        // RedisConnectionException when no endpoint answers, unless the configuration has
        // abortConnect=false: then commands wait for the connection and time out instead.
        ConnectionMultiplexer connection;
        try
        {
            connection = await ConnectionMultiplexer.ConnectAsync(_configuration!).ConfigureAwait(false);
        }
        catch (RedisConnectionException e)
        {
            // StackExchange.Redis's message does not say where it tried; this one does.
            throw new RedisConnectionException(e.FailureType, e.Flags,
                $"RedisDedupeStore could not connect to Redis at {EndPoints(_configuration!)}: {e.Message}", e, e.CommandStatus);
        }
        Interlocked.Exchange(ref _owned, connection);
        // Disposed while connecting: whichever of the two takes the connection out disposes it.
        if (Volatile.Read(ref _disposed) != 0)
        {
            if (Interlocked.Exchange(ref _owned, null) is { } owned) await owned.DisposeAsync().ConfigureAwait(false);
            throw new ObjectDisposedException(nameof(RedisDedupeStore));
        }
        IDatabase database = connection.GetDatabase();
        Volatile.Write(ref _database, database);
        return database;
    }

    private static string EndPoints(ConfigurationOptions configuration)
    {
        var endpoints = new List<string>(configuration.EndPoints.Count);
        foreach (EndPoint endpoint in configuration.EndPoints)
            endpoints.Add(endpoint is DnsEndPoint dns ? $"{dns.Host}:{dns.Port}" : endpoint.ToString() ?? "?");
        return string.Join(", ", endpoints);
    }

    /// <summary>The time to live rounded up to a whole millisecond (Redis's unit; a mark never expires
    /// early, and a positive time to live never becomes PX 0, which Redis refuses), saturating.</summary>
    private static TimeSpan WholeMilliseconds(TimeSpan ttl)
    {
        long ms = ttl.Ticks / TimeSpan.TicksPerMillisecond + (ttl.Ticks % TimeSpan.TicksPerMillisecond == 0 ? 0 : 1);
        return TimeSpan.FromMilliseconds(Math.Min(ms, MaxTtlMs));
    }

    private static ConfigurationOptions ParseConfiguration(string configuration)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(configuration);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            // The configuration is not repeated: it may hold a password.
            throw new ArgumentException($"RedisDedupeStore configuration is invalid: {e.Message}", nameof(configuration), e);
        }
        if (options.EndPoints.Count == 0)
            throw new ArgumentException("RedisDedupeStore configuration names no endpoint: give at least one host:port, such as localhost:6379", nameof(configuration));
        return options;
    }

    private static string ValidateKeyPrefix(string keyPrefix)
    {
        ArgumentNullException.ThrowIfNull(keyPrefix);
        bool valid = keyPrefix.Length is > 0 and <= MaxKeyPrefixLength;
        foreach (char c in keyPrefix)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c)) valid = false;
        }
        if (!valid)
            throw new ArgumentException(
                $"RedisDedupeStore key prefix '{keyPrefix}' must be 1 to {MaxKeyPrefixLength} characters, none of them whitespace or control characters",
                nameof(keyPrefix));
        return keyPrefix;
    }
}
