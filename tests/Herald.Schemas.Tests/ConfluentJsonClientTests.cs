using System.Buffers;
using Confluent.Kafka;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Herald.Schemas.Json;
using Herald.Schemas.Registry;
using Microsoft.AspNetCore.Builder;
using Newtonsoft.Json;
using Newtonsoft.Json.Serialization;
using NJsonSchema.NewtonsoftJson.Generation;

namespace Herald.Schemas.Tests;

/// <summary>What Confluent's JSON serdes write and read: a plain class, named as Newtonsoft.Json
/// names it with camelCase (as Herald's default names).</summary>
public sealed class ShippedDto
{
    public string OrderId { get; set; } = "";
    public int Parcels { get; set; }
}

/// <summary>Confluent's schema-registry client and JSON Schema serdes against Herald's registry
/// over HTTP: JSON schemas registered and checked, and bytes written by either side read by the
/// other (Confluent's deserializer validating them against Herald's generated schema).</summary>
public sealed class ConfluentJsonClientTests : IAsyncLifetime
{

    private static readonly NewtonsoftJsonSchemaGeneratorSettings CamelCase = new()
    {
        SerializerSettings = new JsonSerializerSettings { ContractResolver = new CamelCasePropertyNamesContractResolver() },
    };

    private HttpRegistry _http = null!;

    public async Task InitializeAsync() => _http = await HttpRegistry.StartAsync("herald-registry-json-");

    public async Task DisposeAsync() => await _http.DisposeAsync();

    private const string V1 = """{"type":"object","title":"Placed","properties":{"id":{"type":"string"},"amount":{"type":"number"}},"required":["id"],"additionalProperties":false}""";
    private const string V2 = """{"type":"object","title":"Placed","properties":{"id":{"type":"string"},"amount":{"type":"number"},"currency":{"type":"string"}},"required":["id"],"additionalProperties":false}""";
    private const string Breaking = """{"type":"object","title":"Placed","properties":{"id":{"type":"string"},"amount":{"type":"number"},"currency":{"type":"string"}},"required":["id","currency"],"additionalProperties":false}""";

    [Fact]
    public async Task The_Confluent_client_registers_looks_up_and_checks_JSON_schemas()
    {
        var id = await _http.Client.RegisterSchemaAsync("placed-value", new Schema(V1, SchemaType.Json));
        var byId = await _http.Client.GetSchemaAsync(id);
        Assert.Equal(SchemaType.Json, byId.SchemaType);
        Assert.Equal(V1, byId.SchemaString);
        var looked = await _http.Client.LookupSchemaAsync("placed-value", new Schema(V1, SchemaType.Json), ignoreDeletedSchemas: true);
        Assert.Equal((id, 1), (looked.Id, looked.Version));
        Assert.Equal(SchemaType.Json, looked.SchemaType);

        Assert.True(await _http.Client.IsCompatibleAsync("placed-value", new Schema(V2, SchemaType.Json)));
        Assert.False(await _http.Client.IsCompatibleAsync("placed-value", new Schema(Breaking, SchemaType.Json)));
        var refused = await Assert.ThrowsAsync<Confluent.SchemaRegistry.SchemaRegistryException>(() => _http.Client.RegisterSchemaAsync("placed-value", new Schema(Breaking, SchemaType.Json)));
        Assert.Equal(409, refused.ErrorCode);
        var id2 = await _http.Client.RegisterSchemaAsync("placed-value", new Schema(V2, SchemaType.Json));
        var latest = await _http.Client.GetLatestSchemaAsync("placed-value");
        Assert.Equal((id2, 2, SchemaType.Json), (latest.Id, latest.Version, latest.SchemaType));

        // An Avro subject refuses a JSON version: the types differ.
        await _http.Client.RegisterSchemaAsync("avro-value", new Schema("""{"type":"record","name":"Placed","fields":[]}""", SchemaType.Avro));
        Assert.Equal(409, (await Assert.ThrowsAsync<Confluent.SchemaRegistry.SchemaRegistryException>(() => _http.Client.RegisterSchemaAsync("avro-value", new Schema(V1, SchemaType.Json)))).ErrorCode);
    }

    [Fact]
    public async Task Bytes_written_by_Confluents_JSON_serializer_are_read_by_Herald()
    {
        var serializer = new JsonSerializer<ShippedDto>(_http.Client, new JsonSerializerConfig { AutoRegisterSchemas = true }, CamelCase);
        var bytes = await serializer.SerializeAsync(new ShippedDto { OrderId = "o-1", Parcels = 3 }, new SerializationContext(MessageComponentType.Value, "confluent-shipping"));
        var registered = await _http.Registry.GetVersionAsync("confluent-shipping-value", -1);
        Assert.Equal(EmbeddedSchemaRegistry.Json, registered.SchemaType);

        var herald = new JsonSchemaEventSerializer(_http.Registry);
        Assert.Equal(new Shipped("o-1", 3), herald.Deserialize<Shipped>(bytes));
    }

    [Fact]
    public async Task Bytes_written_by_Herald_are_read_and_validated_by_Confluents_JSON_deserializer()
    {
        var herald = new JsonSchemaEventSerializer(new HttpSchemaRegistry(_http.Server.Urls.Single()));
        var buffer = new ArrayBufferWriter<byte>();
        herald.Serialize(new Shipped("o-2", 4), "herald-shipping", buffer);

        var deserializer = new JsonDeserializer<ShippedDto>(_http.Client, new JsonDeserializerConfig { Validate = true }, CamelCase, null);
        var read = await deserializer.DeserializeAsync(buffer.WrittenMemory, isNull: false, new SerializationContext(MessageComponentType.Value, "herald-shipping"));
        Assert.Equal(("o-2", 4), (read.OrderId, read.Parcels));

        // The validation is real: JSON that breaks Herald's schema (parcels not an integer) is refused.
        var bad = new ArrayBufferWriter<byte>();
        bad.Write(buffer.WrittenSpan[..5]);
        bad.Write("""{"orderId":"o-3","parcels":"four"}"""u8);
        await Assert.ThrowsAnyAsync<Exception>(() => deserializer.DeserializeAsync(bad.WrittenMemory, isNull: false, new SerializationContext(MessageComponentType.Value, "herald-shipping")));
    }
}
