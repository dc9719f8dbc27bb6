using System.Collections.Concurrent;
using Herald.Schemas.Avro;
using Herald.Schemas.Registry;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Herald.Schemas.Tests;

public sealed record Shipped(string OrderId, int Parcels);

/// <summary>Herald's publisher and handlers with Avro and the registry: the schema registered on
/// the first publish, an incompatible one refused before anything is written, auto-registration
/// off for production.</summary>
public sealed class AvroEventSerializerTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-avro-events-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private Task<IHost> StartAsync(ISchemaRegistry registry, AvroEventSerializerOptions options, ConcurrentQueue<Shipped> seen, string log) =>
        ShippingHost.StartAsync(Path.Combine(_dir.FullName, log), new AvroEventSerializer(registry, options), seen);

    private static Task WaitUntil(Func<bool> condition) => ShippingHost.WaitUntil(condition);

    [Fact]
    public async Task Events_publish_as_Avro_with_their_schema_registered_and_are_handled()
    {
        using var registry = EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));
        var seen = new ConcurrentQueue<Shipped>();
        using var host = await StartAsync(registry, new AvroEventSerializerOptions(), seen, "log");
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < 10; i++) await publisher.PublishAsync(new Shipped($"o-{i}", i));
        await WaitUntil(() => seen.Count == 10);
        Assert.Equal(Enumerable.Range(0, 10), seen.Select(s => s.Parcels).Order());
        var registered = await registry.GetVersionAsync("shipping-value", -1);
        Assert.Contains("\"parcels\"", registered.Schema, StringComparison.Ordinal);
        // The bytes on the log are the Confluent wire format with that id.
        var transport = host.Services.GetRequiredService<ITransport>();
        await foreach (var record in transport.ReadAsync("shipping", 0, 0))
        {
            Assert.Equal(0, record.Value!.Value.Span[0]);
            Assert.Equal(registered.Id, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(record.Value.Value.Span[1..]));
            break;
        }
        await host.StopAsync();
    }

    [Fact]
    public async Task An_incompatible_schema_fails_the_publish_with_its_paths_before_anything_is_written()
    {
        using var registry = EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));
        // The subject's history: a version with a field this type lacks and no default for it in the new one.
        await registry.RegisterAsync("shipping-value", """{"type":"record","name":"Shipped","namespace":"Herald.Schemas.Tests","fields":[{"name":"orderId","type":"string"}]}""");
        await registry.SetLevelAsync("shipping-value", Compatibility.CompatibilityLevel.Backward);
        var seen = new ConcurrentQueue<Shipped>();
        using var host = await StartAsync(registry, new AvroEventSerializerOptions(), seen, "log");
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(async () => await publisher.PublishAsync(new Shipped("o-1", 1)));
        Assert.Equal(409, refused.ErrorCode);
        Assert.Contains("Shipped.parcels: field added without default", refused.Message, StringComparison.Ordinal);
        var transport = host.Services.GetRequiredService<ITransport>();
        Assert.All(Enumerable.Range(0, 2), p => Assert.Equal(0, transport.GetOffsets("shipping", p).End)); // nothing written
        await host.StopAsync();
    }

    [Fact]
    public async Task With_auto_registration_off_an_unregistered_schema_fails_naming_the_subject()
    {
        using var registry = EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));
        var seen = new ConcurrentQueue<Shipped>();
        using var host = await StartAsync(registry, new AvroEventSerializerOptions { AutoRegister = false }, seen, "log");
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(async () => await publisher.PublishAsync(new Shipped("o-1", 1)));
        Assert.Equal(40401, refused.ErrorCode);
        Assert.Contains("shipping-value", refused.Message, StringComparison.Ordinal);
        await registry.RegisterAsync("shipping-value", AvroSchemaGenerator.For<Shipped>());
        await publisher.PublishAsync(new Shipped("o-2", 2)); // registered by the deployment: goes
        await WaitUntil(() => seen.Count == 1);
        await host.StopAsync();
    }

    [Theory]
    [InlineData(SubjectNameStrategy.TopicName, "shipping-value")]
    [InlineData(SubjectNameStrategy.RecordName, "Herald.Schemas.Tests.Shipped")]
    [InlineData(SubjectNameStrategy.TopicRecordName, "shipping-Herald.Schemas.Tests.Shipped")]
    public async Task Subjects_are_named_by_the_strategy(SubjectNameStrategy strategy, string subject)
    {
        using var registry = EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));
        var serializer = new AvroEventSerializer(registry, new AvroEventSerializerOptions { SubjectNames = strategy });
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        serializer.Serialize(new Shipped("o-1", 1), "shipping", buffer);
        Assert.Equal([subject], await registry.ListSubjectsAsync());
        Assert.Equal(new Shipped("o-1", 1), serializer.Deserialize<Shipped>(buffer.WrittenSpan));
        // Without a topic only the record name can name the subject.
        if (strategy == SubjectNameStrategy.RecordName) serializer.Serialize(new Shipped("o-2", 2), new System.Buffers.ArrayBufferWriter<byte>());
        else Assert.Throws<InvalidOperationException>(() => serializer.Serialize(new Shipped("o-2", 2), new System.Buffers.ArrayBufferWriter<byte>()));
    }
}
