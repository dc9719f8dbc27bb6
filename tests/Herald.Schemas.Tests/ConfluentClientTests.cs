using Avro.Generic;
using Confluent.Kafka;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Herald.Schemas.Avro;
using Herald.Schemas.Compatibility;
using Herald.Schemas.Registry;
using Microsoft.AspNetCore.Builder;

namespace Herald.Schemas.Tests;

/// <summary>Confluent's own schema-registry client and Avro serdes against Herald's registry over
/// HTTP: registration, lookups, compatibility and config, and bytes written by either side read
/// by the other.</summary>
public sealed class ConfluentClientTests : IAsyncLifetime
{

    private HttpRegistry _http = null!;

    public async Task InitializeAsync() => _http = await HttpRegistry.StartAsync("herald-registry-http-");

    public async Task DisposeAsync() => await _http.DisposeAsync();

    private const string V1 = """{"type":"record","name":"Placed","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}""";
    private const string V2 = """{"type":"record","name":"Placed","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"currency","type":"string","default":"USD"}]}""";
    private const string Breaking = """{"type":"record","name":"Placed","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"total","type":"long"}]}""";

    [Fact]
    public async Task The_Confluent_client_registers_looks_up_checks_and_configures()
    {
        var id = await _http.Client.RegisterSchemaAsync("orders-value", new Schema(V1, SchemaType.Avro));
        Assert.Equal(id, await _http.Client.GetSchemaIdAsync("orders-value", new Schema(V1, SchemaType.Avro)));
        var byId = await _http.Client.GetSchemaAsync(id);
        Assert.Equal(SchemaType.Avro, byId.SchemaType);
        Assert.Equal(V1, byId.SchemaString);
        var looked = await _http.Client.LookupSchemaAsync("orders-value", new Schema(V1, SchemaType.Avro), ignoreDeletedSchemas: true);
        Assert.Equal((id, 1, "orders-value"), (looked.Id, looked.Version, looked.Subject));

        Assert.True(await _http.Client.IsCompatibleAsync("orders-value", new Schema(V2, SchemaType.Avro)));
        Assert.False(await _http.Client.IsCompatibleAsync("orders-value", new Schema(Breaking, SchemaType.Avro)));
        var refused = await Assert.ThrowsAsync<Confluent.SchemaRegistry.SchemaRegistryException>(() => _http.Client.RegisterSchemaAsync("orders-value", new Schema(Breaking, SchemaType.Avro)));
        Assert.Equal(409, refused.ErrorCode);
        var id2 = await _http.Client.RegisterSchemaAsync("orders-value", new Schema(V2, SchemaType.Avro));
        var latest = await _http.Client.GetLatestSchemaAsync("orders-value");
        Assert.Equal((id2, 2), (latest.Id, latest.Version));
        Assert.Equal([1, 2], await _http.Client.GetSubjectVersionsAsync("orders-value"));
        Assert.Equal(["orders-value"], await _http.Client.GetAllSubjectsAsync());

        Assert.Equal(Confluent.SchemaRegistry.Compatibility.Full, await _http.Client.UpdateCompatibilityAsync(Confluent.SchemaRegistry.Compatibility.Full, "orders-value"));
        Assert.Equal(Confluent.SchemaRegistry.Compatibility.Full, await _http.Client.GetCompatibilityAsync("orders-value"));
        Assert.Equal(CompatibilityLevel.Full, await _http.Registry.GetLevelAsync("orders-value"));
        var missing = await Assert.ThrowsAsync<Confluent.SchemaRegistry.SchemaRegistryException>(() => _http.Client.GetLatestSchemaAsync("nope-value"));
        Assert.Equal(40401, missing.ErrorCode);
    }

    [Fact]
    public async Task Bytes_written_by_Confluents_serializer_are_read_by_Herald_and_the_reverse()
    {
        var schema = (global::Avro.RecordSchema)global::Avro.Schema.Parse(V2);
        var record = new GenericRecord(schema);
        record.Add("id", "o-1");
        record.Add("amount", 12.5);
        record.Add("currency", "EUR");
        var serializer = new AvroSerializer<GenericRecord>(_http.Client, new AvroSerializerConfig { AutoRegisterSchemas = true });
        var context = new SerializationContext(MessageComponentType.Value, "orders");
        var bytes = await serializer.SerializeAsync(record, context);

        var codec = new AvroCodec<Placed>(schema);
        var read = codec.Read(bytes, id => global::Avro.Schema.Parse(_http.Registry.GetByIdAsync(id).GetAwaiter().GetResult().Schema));
        Assert.Equal(new Placed("o-1", 12.5, "EUR"), read);

        var id = await _http.Registry.RegisterAsync("orders-value", V2);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        codec.Write(new Placed("o-2", 3.25, "CHF"), id, buffer);
        var deserializer = new AvroDeserializer<GenericRecord>(_http.Client);
        var back = await deserializer.DeserializeAsync(buffer.WrittenMemory, isNull: false, context);
        Assert.Equal(("o-2", 3.25, "CHF"), ((string)back["id"], (double)back["amount"], (string)back["currency"]));
    }

    private const string Customer = """{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"name","type":"string"}]}""";
    private const string Sale = """{"type":"record","name":"Sale","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"customer","type":"shop.Customer"}]}""";

    [Fact]
    public async Task Confluents_client_and_serdes_use_schema_references()
    {
        await _http.Client.RegisterSchemaAsync("customer-value", new Schema(Customer, SchemaType.Avro));
        var references = new List<Confluent.SchemaRegistry.SchemaReference> { new("shop.Customer", "customer-value", 1) };
        var id = await _http.Client.RegisterSchemaAsync("sales-value", new Schema(Sale, references, SchemaType.Avro));
        var byId = await _http.Client.GetSchemaAsync(id);
        Assert.Equal(("shop.Customer", "customer-value", 1), (byId.References.Single().Name, byId.References.Single().Subject, byId.References.Single().Version));
        Assert.Equal(id, (await _http.Client.LookupSchemaAsync("sales-value", new Schema(Sale, references, SchemaType.Avro), ignoreDeletedSchemas: true)).Id);

        // Confluent's serializer writes with the registered (referencing) schema; Herald reads it,
        // resolving the reference through the registry.
        var whole = (global::Avro.RecordSchema)global::Avro.Schema.Parse($$"""{"type":"record","name":"Sale","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"customer","type":{{Customer}}}]}""");
        var customer = new GenericRecord((global::Avro.RecordSchema)whole["customer"].Schema);
        customer.Add("name", "Ada");
        var sale = new GenericRecord(whole);
        sale.Add("id", "s-1");
        sale.Add("customer", customer);
        var serializer = new AvroSerializer<GenericRecord>(_http.Client, new AvroSerializerConfig { AutoRegisterSchemas = false, UseLatestVersion = true });
        var context = new SerializationContext(MessageComponentType.Value, "sales");
        var bytes = await serializer.SerializeAsync(sale, context);
        Assert.Equal(id, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(1)));
        Assert.Equal(new SaleEvent("s-1", new CustomerPart("Ada")), new AvroEventSerializer(_http.Registry, new AvroEventSerializerOptions { Schemas = { [typeof(SaleEvent)] = whole.ToString() } }).Deserialize<SaleEvent>(bytes));

        // And Confluent's deserializer reads it back, following the reference itself.
        var back = await new AvroDeserializer<GenericRecord>(_http.Client).DeserializeAsync(bytes, isNull: false, context);
        Assert.Equal("Ada", (string)((GenericRecord)back["customer"])["name"]);
    }
}

public sealed record CustomerPart(string Name);

public sealed record SaleEvent(string Id, CustomerPart Customer);


public sealed record Placed(string Id, double Amount, string Currency = "USD");
