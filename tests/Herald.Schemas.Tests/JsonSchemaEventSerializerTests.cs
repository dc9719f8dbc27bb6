using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Herald.Schemas.Json;
using Herald.Schemas.Registry;
using Herald.Schemas.Wire;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Schemas.Tests;

public enum Carrier { Post, Courier }

public sealed record Parcel(string Sku, int Quantity);

public sealed record Consignment(Guid Id, string Customer, string? Note, decimal Amount, DateTimeOffset At, Carrier Carrier, Parcel[] Parcels, Dictionary<string, int> Tags, string Currency = "USD");

/// <summary>Herald's JSON Schema serializer: schemas from types, the wire format, the registry on
/// publish (registered, refused when incompatible, looked up with auto-registration off), and
/// bad bytes named by their offset.</summary>
public sealed class JsonSchemaEventSerializerTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-json-events-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private EmbeddedSchemaRegistry OpenRegistry() => EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));

    [Fact]
    public void A_type_becomes_a_closed_JSON_Schema_with_the_serializers_names_and_its_required_properties()
    {
        var schema = JsonSchemaGenerator.Node(typeof(Consignment));
        Assert.Equal(JsonSchemaGenerator.Draft, (string?)schema["$schema"]);
        Assert.Equal("Consignment", (string?)schema["title"]);
        Assert.Equal("object", (string?)schema["type"]);
        Assert.False((bool)schema["additionalProperties"]!);
        var properties = schema["properties"]!.AsObject();
        Assert.Equal(["id", "customer", "note", "amount", "at", "carrier", "parcels", "tags", "currency"], properties.Select(p => p.Key));
        Assert.Equal("string", (string?)properties["customer"]!["type"]);
        Assert.Equal(["string", "null"], properties["note"]!["type"]!.AsArray().Select(t => (string?)t));
        Assert.Equal("number", (string?)properties["amount"]!["type"]);
        Assert.Equal("USD", (string?)properties["currency"]!["default"]);
        // The items of an array are closed objects too; a dictionary's values are additionalProperties.
        Assert.False((bool)properties["parcels"]!["items"]!["additionalProperties"]!);
        Assert.Equal("integer", (string?)properties["tags"]!["additionalProperties"]!["type"]);
        var required = schema["required"]!.AsArray().Select(r => (string?)r).ToList();
        Assert.Contains("customer", required);
        Assert.DoesNotContain("currency", required); // it has a default
    }

    [Fact]
    public async Task Events_publish_as_JSON_with_their_schema_registered_and_are_handled()
    {
        using var registry = OpenRegistry();
        var seen = new ConcurrentQueue<Shipped>();
        using var host = await ShippingHost.StartAsync(Path.Combine(_dir.FullName, "log"), new JsonSchemaEventSerializer(registry), seen);
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        for (var i = 0; i < 10; i++) await publisher.PublishAsync(new Shipped($"o-{i}", i));
        await ShippingHost.WaitUntil(() => seen.Count == 10);
        Assert.Equal(Enumerable.Range(0, 10), seen.Select(s => s.Parcels).Order());
        var registered = await registry.GetVersionAsync("shipping-value", -1);
        Assert.Equal(EmbeddedSchemaRegistry.Json, registered.SchemaType);
        // The bytes on the log: magic byte, the id, then the JSON text.
        var transport = host.Services.GetRequiredService<ITransport>();
        await foreach (var record in transport.ReadAsync("shipping", 0, 0))
        {
            var value = record.Value!.Value.Span;
            Assert.Equal(0, value[0]);
            Assert.Equal(registered.Id, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(value[1..]));
            Assert.StartsWith("{\"orderId\":\"o-", System.Text.Encoding.UTF8.GetString(value[5..]), StringComparison.Ordinal);
            break;
        }
        await host.StopAsync();
    }

    [Fact]
    public async Task An_incompatible_JSON_schema_fails_the_publish_with_its_paths_before_anything_is_written()
    {
        using var registry = OpenRegistry();
        // The subject's history: a closed schema without parcels, which the new type requires.
        await registry.RegisterAsync("shipping-value", """{"type":"object","title":"Shipped","properties":{"orderId":{"type":"string"}},"required":["orderId"],"additionalProperties":false}""", EmbeddedSchemaRegistry.Json);
        var seen = new ConcurrentQueue<Shipped>();
        using var host = await ShippingHost.StartAsync(Path.Combine(_dir.FullName, "log"), new JsonSchemaEventSerializer(registry), seen);
        var publisher = host.Services.GetRequiredService<IEventPublisher>();
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(async () => await publisher.PublishAsync(new Shipped("o-1", 1)));
        Assert.Equal(409, refused.ErrorCode);
        Assert.Contains("#/properties/parcels", refused.Message, StringComparison.Ordinal);
        var transport = host.Services.GetRequiredService<ITransport>();
        Assert.All(Enumerable.Range(0, 2), p => Assert.Equal(0, transport.GetOffsets("shipping", p).End)); // nothing written
        await host.StopAsync();
    }

    [Fact]
    public async Task With_auto_registration_off_an_unregistered_JSON_schema_fails_naming_the_subject()
    {
        using var registry = OpenRegistry();
        var serializer = new JsonSchemaEventSerializer(registry, new JsonSchemaEventSerializerOptions { AutoRegister = false });
        var refused = Assert.Throws<SchemaRegistryException>(() => serializer.Serialize(new Shipped("o-1", 1), "shipping", new ArrayBufferWriter<byte>()));
        Assert.Equal(40401, refused.ErrorCode);
        Assert.Contains("shipping-value", refused.Message, StringComparison.Ordinal);
        var id = await registry.RegisterAsync("shipping-value", JsonSchemaGenerator.For(typeof(Shipped)), EmbeddedSchemaRegistry.Json);
        var buffer = new ArrayBufferWriter<byte>();
        serializer.Serialize(new Shipped("o-2", 2), "shipping", buffer);
        Assert.Equal(id, ConfluentWireFormat.ReadSchemaId(buffer.WrittenSpan));
    }

    [Fact]
    public void A_rich_event_round_trips_and_older_JSON_without_a_defaulted_property_reads()
    {
        using var registry = OpenRegistry();
        var serializer = new JsonSchemaEventSerializer(registry);
        var sent = new Consignment(Guid.NewGuid(), "c-1", null, 12.5m, DateTimeOffset.UnixEpoch.AddDays(1), Carrier.Courier, [new Parcel("sku-1", 2)], new() { ["gift"] = 1 }, "EUR");
        var buffer = new ArrayBufferWriter<byte>();
        serializer.Serialize(sent, "consignments", buffer);
        var back = serializer.Deserialize<Consignment>(buffer.WrittenSpan);
        Assert.Equal((sent.Id, sent.Customer, sent.Note, sent.Amount, sent.At, sent.Carrier, sent.Currency), (back.Id, back.Customer, back.Note, back.Amount, back.At, back.Carrier, back.Currency));
        Assert.Equal(sent.Parcels, back.Parcels);
        Assert.Equal(sent.Tags, back.Tags);

        // The same record as an older producer wrote it, without currency: it takes its default.
        var json = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan[5..]))!.AsObject();
        json.Remove("currency");
        var older = new ArrayBufferWriter<byte>();
        ConfluentWireFormat.WriteHeader(older, ConfluentWireFormat.ReadSchemaId(buffer.WrittenSpan));
        older.Write(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()));
        Assert.Equal("USD", serializer.Deserialize<Consignment>(older.WrittenSpan).Currency);
    }

    [Fact]
    public async Task Bad_bytes_are_named_by_their_offset()
    {
        using var registry = OpenRegistry();
        var serializer = new JsonSchemaEventSerializer(registry);
        var buffer = new ArrayBufferWriter<byte>();
        serializer.Serialize(new Shipped("o-1", 1), "shipping", buffer);
        var good = buffer.WrittenSpan.ToArray();

        var truncated = Assert.Throws<SchemaWireFormatException>(() => serializer.Deserialize<Shipped>(good.AsSpan(0, good.Length - 3)));
        Assert.True(truncated.ByteOffset >= 5, $"offset {truncated.ByteOffset}");
        Assert.Contains("byte ", truncated.Message, StringComparison.Ordinal);

        var notJsonSchema = await registry.RegisterAsync("other-value", """{"type":"record","name":"R","fields":[]}""");
        var avroId = good.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(avroId.AsSpan(1), notJsonSchema);
        var wrongType = Assert.Throws<SchemaWireFormatException>(() => serializer.Deserialize<Shipped>(avroId));
        Assert.Equal(1, wrongType.ByteOffset);
        Assert.Contains("AVRO", wrongType.Message, StringComparison.Ordinal);

        var unknown = good.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(unknown.AsSpan(1), 999);
        Assert.Equal(40403, Assert.Throws<SchemaRegistryException>(() => serializer.Deserialize<Shipped>(unknown)).ErrorCode);

        var magic = good.ToArray();
        magic[0] = 7;
        Assert.Equal(0, Assert.Throws<SchemaWireFormatException>(() => serializer.Deserialize<Shipped>(magic)).ByteOffset);

        var small = new JsonSchemaEventSerializer(registry, new JsonSchemaEventSerializerOptions { MaxSize = 16 });
        Assert.Throws<SchemaWireFormatException>(() => small.Serialize(new Shipped(new string('x', 40), 1), "shipping", new ArrayBufferWriter<byte>()));
        Assert.Throws<SchemaWireFormatException>(() => small.Deserialize<Shipped>(good));
    }
}
