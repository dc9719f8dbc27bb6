using Confluent.SchemaRegistry;
using Herald.Schemas.Registry;
using Microsoft.AspNetCore.Builder;

namespace Herald.Schemas.Tests;

/// <summary>Herald's embedded registry in a directory of its own, served by its REST API on a free
/// port of 127.0.0.1, with Confluent's client pointed at it: what the tests of Confluent's client
/// and serdes against Herald's registry share.</summary>
public sealed class HttpRegistry : IAsyncDisposable
{
    private readonly DirectoryInfo _dir;

    private HttpRegistry(DirectoryInfo dir, EmbeddedSchemaRegistry registry, WebApplication server)
    {
        _dir = dir;
        Registry = registry;
        Server = server;
        Client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = server.Urls.Single() });
    }

    public EmbeddedSchemaRegistry Registry { get; }
    public WebApplication Server { get; }
    public CachedSchemaRegistryClient Client { get; }

    public static async Task<HttpRegistry> StartAsync(string directoryPrefix)
    {
        var dir = Directory.CreateTempSubdirectory(directoryPrefix);
        var registry = EmbeddedSchemaRegistry.Open(Path.Combine(dir.FullName, "registry.db"));
        return new HttpRegistry(dir, registry, await SchemaRegistryApi.StartAsync(registry, "http://127.0.0.1:0"));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.StopAsync();
        await Server.DisposeAsync();
        Registry.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }
}
