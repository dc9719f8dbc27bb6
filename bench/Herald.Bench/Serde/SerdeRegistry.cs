using Confluent.SchemaRegistry;
using Herald.Schemas.Registry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Bench.Serde;

/// <summary>The registry of the serde benchmarks: Herald's embedded registry (SQLite, in a fresh
/// temp directory) served over HTTP on 127.0.0.1 (Herald's Confluent REST API), to Herald's
/// serializers through HttpSchemaRegistry and to Confluent's through CachedSchemaRegistryClient.
/// Every HTTP request is counted, so a benchmark can show that its measured loop made none.</summary>
public sealed class SerdeRegistry : IAsyncDisposable
{
    private readonly DirectoryInfo _dir;
    private readonly WebApplication _server;
    private long _requests;
    private long _requestsAfterSetup;

    private SerdeRegistry(DirectoryInfo dir, EmbeddedSchemaRegistry registry, WebApplication server)
    {
        _dir = dir;
        Registry = registry;
        _server = server;
        Http = new HttpSchemaRegistry(server.Urls.Single());
        Client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = server.Urls.Single() });
    }

    public EmbeddedSchemaRegistry Registry { get; }

    /// <summary>Herald's client of the registry's REST API, for Herald's serializers.</summary>
    public HttpSchemaRegistry Http { get; }

    public CachedSchemaRegistryClient Client { get; }

    /// <summary>HTTP requests the registry has served so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Marks the end of a benchmark's setup: requests from here on are the measured loop's.</summary>
    public void SetupDone() => _requestsAfterSetup = Requests;

    /// <summary>Prints the requests of setup and of the measured loop (BenchmarkDotNet keeps the
    /// line in the benchmark's log).</summary>
    public void Report(string scenario, string details) =>
        Console.WriteLine($"scenario={scenario} {details} registry_requests_setup={_requestsAfterSetup} registry_requests_measured={Requests - _requestsAfterSetup}");

    public static async Task<SerdeRegistry> StartAsync()
    {
        var dir = Directory.CreateTempSubdirectory("herald-serde-");
        var registry = EmbeddedSchemaRegistry.Open(Path.Combine(dir.FullName, "registry.db"));
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        SerdeRegistry? self = null;
        app.Use((context, next) =>
        {
            Interlocked.Increment(ref self!._requests);
            return next(context);
        });
        app.MapSchemaRegistry(registry);
        await app.StartAsync();
        self = new SerdeRegistry(dir, registry, app);
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Http.Dispose();
        await _server.StopAsync();
        await _server.DisposeAsync();
        Registry.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }
}
