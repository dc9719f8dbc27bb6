using Herald.Schemas.Avro;
using Herald.Schemas.Registry;

namespace Herald.Schemas.Tests;

/// <summary>The remote registry client against Herald's registry over HTTP, as the same
/// interface the serializer uses; and the serializer's bytes read through either.</summary>
public sealed class HttpSchemaRegistryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-registry-client-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task The_client_registers_looks_up_and_gets_by_id_with_the_registrys_error_codes()
    {
        using var embedded = EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));
        var server = await SchemaRegistryApi.StartAsync(embedded, "http://127.0.0.1:0");
        try
        {
            using var client = new HttpSchemaRegistry(server.Urls.Single());
            var schema = AvroSchemaGenerator.For<Shipped>();
            var id = await client.RegisterAsync("shipping-value", schema);
            Assert.Equal(id, await embedded.RegisterAsync("shipping-value", schema));
            var found = await client.LookUpAsync("shipping-value", schema);
            Assert.Equal((id, 1, "shipping-value"), (found.Id, found.Version, found.Subject));
            var (type, text) = await client.GetByIdAsync(id);
            Assert.Equal(("AVRO", schema), (type, text));
            Assert.Equal(40403, (await Assert.ThrowsAsync<SchemaRegistryException>(() => client.GetByIdAsync(id + 100))).ErrorCode);
            Assert.Equal(40401, (await Assert.ThrowsAsync<SchemaRegistryException>(() => client.LookUpAsync("nope", schema))).ErrorCode);
            var invalid = await Assert.ThrowsAsync<SchemaRegistryException>(() => client.RegisterAsync("shipping-value", "{\"type\":\"nope\"}"));
            Assert.Equal(42201, invalid.ErrorCode);

            // Bytes the serializer writes through the remote registry read through the embedded one.
            var remote = new AvroEventSerializer(client);
            var local = new AvroEventSerializer(embedded);
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            remote.Serialize(new Shipped("o-1", 4), "shipping", buffer);
            Assert.Equal(new Shipped("o-1", 4), local.Deserialize<Shipped>(buffer.WrittenSpan));
        }
        finally
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }
        Assert.Throws<ArgumentException>(() => new HttpSchemaRegistry("ftp://x"));
    }
}
