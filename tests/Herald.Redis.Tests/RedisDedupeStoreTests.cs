using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Herald.Dedupe;
using Herald.Log;
using Herald.Redis.Tests;
using Herald.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

[assembly: NeedsRedisForTheDedupeContract]

namespace Herald.Redis.Tests;

/// <summary>The contract's facts need Redis here: skipped without <c>HERALD_REDIS</c> unless under CI.</summary>
internal sealed class NeedsRedisForTheDedupeContractAttribute : DedupeContractSkipAttribute
{
    public override string? Reason => Services.SkipUnless(Services.Redis, "HERALD_REDIS", "Redis");
}

public sealed record OrderPlaced(string OrderId, decimal Amount);

/// <summary>The dedupe store contract on <see cref="RedisDedupeStore"/> (on a real Redis, each test
/// under a key prefix of its own, deleted afterwards), and what is particular to Redis: marks shared
/// by every store on the server, the key prefix, owning or borrowing the connection, and failing
/// loudly without a server.</summary>
public sealed class RedisDedupeStoreTests : DedupeStoreContract
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private readonly string _prefix = "herald-test:" + Guid.NewGuid().ToString("N")[..16] + ":";
    private readonly List<IAsyncDisposable> _cleanup = [];
    private bool _usedRedis;

    protected override IDedupeStore CreateStore()
    {
        _usedRedis = true;
        return new RedisDedupeStore(Services.RequireRedis(), _prefix);
    }

    /// <summary>Another store with a connection of its own, on this test's prefix unless told otherwise.</summary>
    private RedisDedupeStore OwnStore(string? prefix = null, string? extraConfiguration = null)
    {
        _usedRedis = true;
        var store = new RedisDedupeStore(Services.RequireRedis() + extraConfiguration, prefix ?? _prefix);
        _cleanup.Add(store);
        return store;
    }

    /// <summary>A connection of the test's own, to look at the server directly.</summary>
    private async Task<ConnectionMultiplexer> ConnectAsync()
    {
        _usedRedis = true;
        var connection = await ConnectionMultiplexer.ConnectAsync(Services.RequireRedis() + ",allowAdmin=true");
        _cleanup.Add(connection);
        return connection;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        try
        {
            if (_usedRedis && Services.Redis is not null)
            {
                // Long-lived marks would outlive the test run: delete everything under the prefix.
                await using var admin = await ConnectionMultiplexer.ConnectAsync(Services.Redis);
                var server = admin.GetServer(admin.GetEndPoints()[0]);
                var keys = new List<RedisKey>();
                await foreach (RedisKey key in server.KeysAsync(pattern: _prefix + "*", pageSize: 1_000)) keys.Add(key);
                if (keys.Count > 0) await admin.GetDatabase().KeyDeleteAsync([.. keys]);
            }
        }
        finally
        {
            foreach (IAsyncDisposable d in _cleanup) await d.DisposeAsync();
        }
    }

    [RedisFact]
    public async Task Two_stores_on_one_server_see_each_others_marks()
    {
        var first = OwnStore();
        var second = OwnStore();

        Assert.True(await first.TryMarkAsync("orders/evt-1", Hour));
        Assert.True(await second.ContainsAsync("orders/evt-1"));
        Assert.False(await second.TryMarkAsync("orders/evt-1", Hour));

        Assert.True(await second.TryMarkAsync("orders/evt-2", Hour));
        Assert.True(await first.ContainsAsync("orders/evt-2"));
        Assert.False(await first.TryMarkAsync("orders/evt-2", Hour));
    }

    [RedisFact]
    public async Task Concurrent_marks_of_one_key_from_stores_on_separate_connections_yield_exactly_one_winner()
    {
        var stores = new[] { OwnStore(), OwnStore(), OwnStore(), OwnStore() };
        foreach (var store in stores) Assert.False(await store.ContainsAsync("warm-up")); // connected before the race

        for (int round = 0; round < 5; round++)
        {
            string key = "race-" + round;
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var attempts = new List<Task<bool>>();
            foreach (var store in stores)
            {
                for (int i = 0; i < 4; i++)
                {
                    attempts.Add(Task.Run(async () =>
                    {
                        await start.Task;
                        return await store.TryMarkAsync(key, Hour);
                    }));
                }
            }
            start.SetResult();
            bool[] results = await Task.WhenAll(attempts).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Single(results, won => won);
        }
    }

    [RedisFact]
    public async Task Marks_are_keys_under_the_prefix_that_expire_on_the_server()
    {
        var redis = (await ConnectAsync()).GetDatabase();
        var store = OwnStore();

        Assert.True(await store.TryMarkAsync("orders/evt-1", TimeSpan.FromMinutes(5)));
        // Rounded up to the next whole millisecond, never down.
        Assert.True(await store.TryMarkAsync("orders/evt-2", TimeSpan.FromTicks(TimeSpan.TicksPerMinute + 1)));
        Assert.True(await store.TryMarkAsync("orders/evt-3", TimeSpan.MaxValue));

        Assert.True(await redis.KeyExistsAsync(_prefix + "orders/evt-1"));
        Assert.False(await redis.KeyExistsAsync("orders/evt-1"));
        TimeSpan ttl1 = Assert.NotNull(await redis.KeyTimeToLiveAsync(_prefix + "orders/evt-1"));
        Assert.InRange(ttl1, TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5));
        TimeSpan ttl2 = Assert.NotNull(await redis.KeyTimeToLiveAsync(_prefix + "orders/evt-2"));
        Assert.InRange(ttl2, TimeSpan.FromMinutes(1) - TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(1) + TimeSpan.FromMilliseconds(1));
        TimeSpan ttl3 = Assert.NotNull(await redis.KeyTimeToLiveAsync(_prefix + "orders/evt-3"));
        Assert.True(ttl3 > TimeSpan.FromDays(365 * 1000), $"a mark for TimeSpan.MaxValue expires in {ttl3}");

        var server = (await ConnectAsync()).GetServers()[0];
        var keys = new List<string>();
        await foreach (RedisKey key in server.KeysAsync(pattern: _prefix + "*")) keys.Add(key!);
        keys.Sort(StringComparer.Ordinal);
        Assert.Equal([_prefix + "orders/evt-1", _prefix + "orders/evt-2", _prefix + "orders/evt-3"], keys);
    }

    [RedisFact]
    public async Task Stores_with_different_prefixes_keep_their_marks_apart()
    {
        var orders = OwnStore(_prefix + "orders:");
        var payments = OwnStore(_prefix + "payments:");

        Assert.True(await orders.TryMarkAsync("evt-1", Hour));
        Assert.False(await payments.ContainsAsync("evt-1"));
        Assert.True(await payments.TryMarkAsync("evt-1", Hour));
        Assert.False(await payments.TryMarkAsync("evt-1", Hour));
    }

    [Fact]
    public async Task A_store_on_an_unreachable_endpoint_fails_with_a_connection_exception_at_every_call()
    {
        int port = ClosedPort();
        await using var store = new RedisDedupeStore($"127.0.0.1:{port},connectTimeout=500");
        var clock = Stopwatch.StartNew();

        var mark = await Assert.ThrowsAsync<RedisConnectionException>(() => store.TryMarkAsync("k", Hour).AsTask());
        // Not remembered: the next call connects again, and fails again.
        var contains = await Assert.ThrowsAsync<RedisConnectionException>(() => store.ContainsAsync("k").AsTask());
        await Assert.ThrowsAsync<RedisConnectionException>(() => store.TryMarkAsync("k", Hour).AsTask());

        Assert.Contains($"127.0.0.1:{port}", mark.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", contains.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed} to fail");
    }

    [Fact]
    public async Task A_store_on_a_callers_connection_that_is_down_fails_rather_than_answering()
    {
        int port = ClosedPort();
        // abortConnect=false: the connection is made without a server, and commands wait for one in
        // its backlog until they time out.
        await using var connection = await ConnectionMultiplexer.ConnectAsync(
            $"127.0.0.1:{port},abortConnect=false,connectTimeout=100,asyncTimeout=300,syncTimeout=300");
        await using var store = new RedisDedupeStore(connection, _prefix);
        var clock = Stopwatch.StartNew();

        // Side by side: StackExchange.Redis times its backlog out on a one-second heartbeat.
        Task<bool> mark = store.TryMarkAsync("k", Hour).AsTask();
        Task<bool> contains = store.ContainsAsync("k").AsTask();

        var markFailure = await Assert.ThrowsAsync<RedisConnectionException>(() => mark);
        var containsFailure = await Assert.ThrowsAsync<RedisConnectionException>(() => contains);
        Assert.Contains($"127.0.0.1:{port}", markFailure.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", containsFailure.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed} to fail");
    }

    [RedisFact]
    public async Task Disposing_a_store_that_owns_its_connection_closes_it()
    {
        string name = "herald-dedupe-test-" + Guid.NewGuid().ToString("N")[..12];
        var admin = await ConnectAsync();
        var server = admin.GetServers()[0];
        var store = new RedisDedupeStore(Services.RequireRedis() + ",name=" + name, _prefix);
        Assert.True(await store.TryMarkAsync("k", Hour));
        Assert.Contains(await server.ClientListAsync(), c => c.Name == name);

        await store.DisposeAsync();

        await WaitUntilAsync(async () => !(await server.ClientListAsync()).Any(c => c.Name == name), "the store's connection to close");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.TryMarkAsync("k2", Hour).AsTask());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.ContainsAsync("k").AsTask());
        await store.DisposeAsync(); // twice is fine
    }

    [RedisFact]
    public async Task Disposing_a_store_on_a_callers_connection_leaves_the_connection_open()
    {
        var connection = await ConnectAsync();
        var store = new RedisDedupeStore(connection, _prefix);
        Assert.True(await store.TryMarkAsync("k", Hour));

        store.Dispose();

        Assert.True(connection.IsConnected);
        Assert.True(await connection.GetDatabase().KeyExistsAsync(_prefix + "k"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.ContainsAsync("k").AsTask());
        var again = new RedisDedupeStore(connection, _prefix);
        Assert.False(await again.TryMarkAsync("k", Hour));
    }

    [Fact]
    public void A_key_prefix_that_is_empty_too_long_or_has_whitespace_or_control_characters_is_refused_naming_it()
    {
        Assert.Equal("keyPrefix", Assert.Throws<ArgumentNullException>(() => new RedisDedupeStore("localhost:6379", null!)).ParamName);
        foreach (string prefix in new[] { "", " ", "orders dedupe:", "orders:\n", "orders:\t", "orders:\0", new string('p', RedisDedupeStore.MaxKeyPrefixLength + 1) })
        {
            var e = Assert.Throws<ArgumentException>(() => new RedisDedupeStore("localhost:6379", prefix));
            Assert.Equal("keyPrefix", e.ParamName);
        }
        // The longest accepted, and the default, build without connecting.
        using var longest = new RedisDedupeStore("localhost:6379", new string('p', RedisDedupeStore.MaxKeyPrefixLength));
        using var defaulted = new RedisDedupeStore("localhost:6379");
    }

    [Fact]
    public void A_configuration_that_names_no_endpoint_or_does_not_parse_is_refused_naming_it_without_repeating_it()
    {
        Assert.Equal("configuration", Assert.Throws<ArgumentNullException>(() => new RedisDedupeStore((string)null!)).ParamName);
        foreach (string configuration in new[] { "", "   ", "abortConnect=false", "localhost:6379,password=s3cret,noSuchOption=1", "localhost:6379,connectTimeout=soon,password=s3cret" })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => new RedisDedupeStore(configuration));
            Assert.Equal("configuration", e.ParamName);
            Assert.DoesNotContain("s3cret", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal("connection", Assert.Throws<ArgumentNullException>(() => new RedisDedupeStore((IConnectionMultiplexer)null!)).ParamName);
    }

    [Fact]
    public void UseRedisDedupe_checks_its_arguments_when_wiring()
    {
        var prefix = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddHerald(h => h.UseRedisDedupe("localhost:6379", "no spaces please")));
        Assert.Equal("keyPrefix", prefix.ParamName);
        var configuration = Assert.ThrowsAny<ArgumentException>(() => new ServiceCollection().AddHerald(h => h.UseRedisDedupe("")));
        Assert.Equal("configuration", configuration.ParamName);
        Assert.Throws<InvalidOperationException>(() => new ServiceCollection().AddHerald(h => h.UseRedisDedupe("localhost:6379").UseRedisDedupe("localhost:6379")));
    }

    [RedisFact]
    public async Task UseRedisDedupe_registers_a_store_on_the_prefix_that_the_provider_disposes_with_its_connection()
    {
        string name = "herald-dedupe-test-" + Guid.NewGuid().ToString("N")[..12];
        var server = (await ConnectAsync()).GetServers()[0];
        var redis = (await ConnectAsync()).GetDatabase();
        var services = new ServiceCollection();
        services.AddHerald(h => h.UseRedisDedupe(Services.RequireRedis() + ",name=" + name, _prefix));

        await using (var provider = services.BuildServiceProvider())
        {
            var store = provider.GetRequiredService<IDedupeStore>();
            Assert.IsType<RedisDedupeStore>(store);
            Assert.Same(store, provider.GetRequiredService<IDedupeStore>());
            Assert.True(await store.TryMarkAsync("orders/evt-1", Hour));
            Assert.True(await redis.KeyExistsAsync(_prefix + "orders/evt-1"));
            Assert.Contains(await server.ClientListAsync(), c => c.Name == name);
        }

        await WaitUntilAsync(async () => !(await server.ClientListAsync()).Any(c => c.Name == name), "the provider to close the store's connection");
    }

    [RedisFact]
    public async Task A_subscription_with_the_redis_dedupe_store_runs_a_redelivered_event_once()
    {
        string log = Path.Combine(Path.GetTempPath(), "herald-redis-tests", Guid.NewGuid().ToString("N")[..12]);
        var runs = new ConcurrentQueue<string>();
        var redis = (await ConnectAsync()).GetDatabase();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseEmbedded(log, o =>
            {
                o.DefaultTopic.Durability = DurabilityMode.AckOnWrite;
                o.MaintenanceInterval = null;
            });
            h.UseRedisDedupe(Services.RequireRedis(), _prefix);
            h.Topic("orders", partitions: 1);
            h.Event<OrderPlaced>("orders", e => e.OrderId);
            h.Subscribe("billing", s => s
                .UseDedupe(TimeSpan.FromMinutes(5))
                .Handle<OrderPlaced>((e, ctx, ct) =>
                {
                    runs.Enqueue(ctx.Envelope.Id + ":" + e.OrderId);
                    return ValueTask.CompletedTask;
                }));
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync();
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            // The second is a redelivery of the first (same id); the third follows both on their key.
            await publisher.PublishAsync(new OrderPlaced("o1", 10m), new PublishOptions { Id = "evt-1" });
            await publisher.PublishAsync(new OrderPlaced("o1", 10m), new PublishOptions { Id = "evt-1" });
            await publisher.PublishAsync(new OrderPlaced("o1", 20m), new PublishOptions { Id = "evt-2" });
            await WaitUntilAsync(() => Task.FromResult(runs.Contains("evt-2:o1")), "evt-2 handled");

            // Marked once the handler has returned, so awaited rather than read at once.
            await WaitUntilAsync(async () => await redis.KeyExistsAsync(_prefix + "billing/evt-2"), "evt-2 marked");
            Assert.True(await redis.KeyExistsAsync(_prefix + "billing/evt-1"));
            Assert.Equal(["evt-1:o1", "evt-2:o1"], runs.ToArray());
        }
        finally
        {
            await host.StopAsync();
            if (host is IAsyncDisposable d) await d.DisposeAsync();
            else host.Dispose();
            try { Directory.Delete(log, recursive: true); }
            catch (IOException) { }
        }
    }

    /// <summary>A local TCP port nothing listens on: bound by the system, then released.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(10)) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }
}
