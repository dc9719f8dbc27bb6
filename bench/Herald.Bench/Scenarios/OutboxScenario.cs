using System.Diagnostics;
using Herald.Embedded;
using Herald.Log;
using Herald.Outbox;
using Herald.PostgreSql;
using Herald.Sqlite;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Bench.Scenarios;

/// <summary>outbox: the transactional outbox on SQLite or PostgreSQL (--store), relayed to the
/// embedded log (durable: fsync with group commit). For transactions of 1 and of 100 events:
/// - relay throughput: --count events (the pipeline benchmark's record) are written into the outbox
///   with the relay off, then a relay drains them; msgs_per_s is events relayed over the time from
///   the relay's start to the last one durable in the log (write_msgs_per_s: the writing, for scale);
/// - commit-to-publish latency: at a moderate rate (--rate events/s, 2,000 by default, paced in
///   transactions), the time from a transaction's commit returning to its events being durable in
///   the log and readable (p50_us/p99_us over the events after a warm-up second).
/// --batch sets the relay's round size (OutboxOptions.BatchSize, 500 by default).
/// One line per transaction size: scenario=outbox-sqlite|outbox-postgres.</summary>
public static class OutboxScenario
{
    private static readonly string Payload = new('x', 100);

    public static async Task RunAsync(BenchOptions options)
    {
        var count = (int)(options.Count ?? 100_000);
        var rate = options.Rate ?? 2000;
        foreach (var perTransaction in new[] { 1, 100 })
        {
            var throughput = await RelayThroughputAsync(options, count, perTransaction);
            var latency = await CommitToPublishAsync(options, rate, perTransaction);
            var output = new BenchOutput($"outbox-{options.Store}")
                .Add("tx", perTransaction)
                .Add("count", count)
                .Add("msgs_per_s", throughput.RelayRate)
                .Add("write_msgs_per_s", throughput.WriteRate)
                .Add("rate", rate)
                .Add("p50_us", LatencyRecorder.Micros(latency.P50), 1)
                .Add("p99_us", LatencyRecorder.Micros(latency.P99), 1)
                .Add("max_us", LatencyRecorder.Micros(latency.Max), 1)
                .Add("latency_count", latency.Count)
                .Add("durability", "fsync")
                .Add("fs", throughput.FileSystem);
            throughput.Gc.AddTo(output, count).Print();
        }
    }

    private sealed record Throughput(double WriteRate, double RelayRate, GcMeter Gc, string FileSystem);

    private static async Task<Throughput> RelayThroughputAsync(BenchOptions options, int count, int perTransaction)
    {
        using var dir = new BenchDirectory(options.Dir, "outbox");
        await using var store = await BenchStore.CreateAsync(options.Store, dir.Path);
        await using var log = EmbeddedLog.Open(Path.Combine(dir.Path, "log"), new EmbeddedLogOptions { MaintenanceInterval = null });

        // Written with the relay off: the outbox fills up.
        var writeStarted = Stopwatch.GetTimestamp();
        using (var writer = await StartAsync(store, log, relay: false, options.Batch))
        {
            await WriteAsync(writer.Services.GetRequiredService<TransactionalOutbox>(), count, perTransaction, concurrency: 8);
            await writer.StopAsync();
        }
        var writeRate = count / Stopwatch.GetElapsedTime(writeStarted).TotalSeconds;

        // Drained by a relay: from its start to the last event durable in the log.
        var gc = new GcMeter();
        var started = Stopwatch.GetTimestamp();
        using var relay = await StartAsync(store, log, relay: true, options.Batch);
        var topic = log.GetOrCreateTopic("bench");
        while (topic.Partitions.Sum(p => p.EndOffset) < count) await Task.Delay(1);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        gc.Stop();
        await relay.StopAsync();
        return new Throughput(writeRate, count / seconds, gc, dir.FileSystem);
    }

    private sealed record Latency(long P50, long P99, long Max, int Count);

    private static async Task<Latency> CommitToPublishAsync(BenchOptions options, int rate, int perTransaction)
    {
        using var dir = new BenchDirectory(options.Dir, "outbox-latency");
        await using var store = await BenchStore.CreateAsync(options.Store, dir.Path);
        await using var log = EmbeddedLog.Open(Path.Combine(dir.Path, "log"), new EmbeddedLogOptions { MaintenanceInterval = null });
        using var host = await StartAsync(store, log, relay: true, options.Batch);
        var outbox = host.Services.GetRequiredService<TransactionalOutbox>();
        var seconds = 4; // one of warm-up, three measured
        var total = rate * seconds / perTransaction * perTransaction;
        var committed = new long[total];
        var arrived = new long[total];
        using var stop = new CancellationTokenSource();
        var topic = log.GetOrCreateTopic("bench");
        var followers = topic.Partitions.Select(p => FollowAsync(p, arrived, stop.Token)).ToList();

        // Paced: each transaction at its due time, one after another (a moderate, steady load).
        var interval = Stopwatch.Frequency * perTransaction / rate;
        var start = Stopwatch.GetTimestamp();
        for (var first = 0; first < total; first += perTransaction)
        {
            var due = start + first / perTransaction * interval;
            while (Stopwatch.GetTimestamp() < due) await Task.Delay(1);
            await using var tx = await outbox.BeginAsync();
            await tx.PublishManyAsync(Events(first, first + perTransaction));
            await tx.CommitAsync();
            var now = Stopwatch.GetTimestamp();
            for (var seq = first; seq < first + perTransaction; seq++) committed[seq] = now;
        }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Array.IndexOf(arrived, 0L) >= 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("events not relayed within 60 s");
            await Task.Delay(5);
        }
        await stop.CancelAsync();
        foreach (var f in followers) await f.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await host.StopAsync();

        var warmup = rate; // the first second
        var latencies = new long[total - warmup];
        for (var i = warmup; i < total; i++) latencies[i - warmup] = Math.Max(0, arrived[i] - committed[i]);
        Array.Sort(latencies);
        return new Latency(LatencyRecorder.Percentile(latencies, 0.50), LatencyRecorder.Percentile(latencies, 0.99), latencies[^1], latencies.Length);
    }

    /// <summary>Records when each event (by its sequence number) became readable in the log.</summary>
    private static async Task FollowAsync(LogPartition partition, long[] arrived, CancellationToken cancellationToken)
    {
        var serializer = new Serialization.SystemTextJsonEventSerializer(PipelineJsonContext.Default.Options);
        await foreach (var record in partition.ReadRecordsAsync(0, cancellationToken))
        {
            var now = Stopwatch.GetTimestamp();
            var seq = serializer.Deserialize<PipelineEvent>(record.Value!.Value.Span).Seq;
            arrived[seq] = now;
        }
    }

    private static IEnumerable<PipelineEvent> Events(int from, int to)
    {
        for (var seq = from; seq < to; seq++) yield return new PipelineEvent(Guid.NewGuid(), seq, Payload);
    }

    private static async Task WriteAsync(TransactionalOutbox outbox, int count, int perTransaction, int concurrency)
    {
        var next = -perTransaction;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (true)
            {
                var first = Interlocked.Add(ref next, perTransaction);
                if (first >= count) return;
                await using var tx = await outbox.BeginAsync();
                await tx.PublishManyAsync(Events(first, Math.Min(first + perTransaction, count)));
                await tx.CommitAsync();
            }
        }));
    }

    private static async Task<IHost> StartAsync(BenchStore store, EmbeddedLog log, bool relay, int? batch)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseTransport(_ => new EmbeddedTransport(log, ownsLog: false));
            h.UseSystemTextJson(PipelineJsonContext.Default.Options);
            store.Use(h, o =>
            {
                o.RunRelay = relay;
                if (batch is { } size) o.BatchSize = size;
            });
            h.Topic("bench", partitions: 1);
            h.Event<PipelineEvent>("bench", e => "k" + (e.Seq % 1024));
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}

/// <summary>The database behind the outbox scenario: a SQLite file in the scenario's directory, or
/// a fresh schema of a PostgreSQL database (dropped afterwards).</summary>
internal abstract class BenchStore : IAsyncDisposable
{
    public abstract void Use(HeraldBuilder herald, Action<OutboxOptions> outbox);

    public abstract ValueTask DisposeAsync();

    public static Task<BenchStore> CreateAsync(string kind, string directory) => kind switch
    {
        "sqlite" => Task.FromResult<BenchStore>(new SqliteBenchStore(Path.Combine(directory, "outbox.db"))),
        "postgres" => PostgresBenchStore.CreateAsync(),
        _ => throw new ArgumentException($"store '{kind}' is not supported", nameof(kind)),
    };

    private sealed class PostgresBenchStore(string connectionString, string schema) : BenchStore
    {
        /// <summary>HERALD_POSTGRES, or a local server as postgres/postgres (database herald_tests).</summary>
        public static async Task<BenchStore> CreateAsync()
        {
            var connectionString = Environment.GetEnvironmentVariable("HERALD_POSTGRES") is { Length: > 0 } given
                ? given
                : "Host=127.0.0.1;Username=postgres;Password=postgres;Database=herald_tests";
            var store = new PostgresBenchStore(connectionString, "bench_" + Guid.NewGuid().ToString("N")[..12]);
            await store.ExecuteAsync("SELECT 1"); // fails now, naming the server, rather than inside the host
            return store;
        }

        public override void Use(HeraldBuilder herald, Action<OutboxOptions> outbox) => herald.UsePostgres(connectionString, outbox, schema: schema);

        private async Task ExecuteAsync(string sql)
        {
            await using var connection = new Npgsql.NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }

        public override async ValueTask DisposeAsync()
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            await ExecuteAsync($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        }
    }

    private sealed class SqliteBenchStore(string path) : BenchStore
    {
        public override void Use(HeraldBuilder herald, Action<OutboxOptions> outbox) => herald.UseSqlite($"Data Source={path}", outbox);

        public override ValueTask DisposeAsync()
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools(); // lets go of the file
            return ValueTask.CompletedTask;
        }
    }
}
