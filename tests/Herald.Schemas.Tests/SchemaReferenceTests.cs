using Herald.Schemas.Avro;
using Herald.Schemas.Compatibility;
using Herald.Schemas.Registry;

namespace Herald.Schemas.Tests;

public sealed record Buyer(string Name, string Email);

public sealed record Purchase(string Id, Buyer Buyer);

/// <summary>Schema references, as Confluent's registry has them: a schema naming types of
/// another subject's version (Avro) or another document (JSON Schema <c>$ref</c>), checked,
/// stored, served, resolved when records are read, and protected from deletion while named.</summary>
public sealed class SchemaReferenceTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-references-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private EmbeddedSchemaRegistry Open() => EmbeddedSchemaRegistry.Open(Path.Combine(_dir.FullName, "registry.db"));

    private const string Buyer1 = """{"type":"record","name":"Buyer","namespace":"Herald.Schemas.Tests","fields":[{"name":"name","type":"string"},{"name":"email","type":"string"}]}""";
    private const string BuyerWithoutDefault = """{"type":"record","name":"Buyer","namespace":"Herald.Schemas.Tests","fields":[{"name":"name","type":"string"},{"name":"email","type":"string"},{"name":"phone","type":"string"}]}""";
    private const string Purchase1 = """{"type":"record","name":"Purchase","namespace":"Herald.Schemas.Tests","fields":[{"name":"id","type":"string"},{"name":"buyer","type":"Herald.Schemas.Tests.Buyer"}]}""";

    [Fact]
    public async Task An_Avro_schema_names_a_type_of_another_subject_and_the_reference_is_stored_and_served()
    {
        using var registry = Open();
        await registry.RegisterAsync("buyer-value", Buyer1);
        SchemaReference[] references = [new("Herald.Schemas.Tests.Buyer", "buyer-value", 1)];
        var id = await registry.RegisterAsync("purchase-value", Purchase1, null, references);
        var stored = await registry.GetByIdAsync(id);
        Assert.Equal(Purchase1, stored.Schema);
        Assert.Equal(references, stored.References);
        Assert.Equal(references, (await registry.GetVersionAsync("purchase-value", 1)).References);
        Assert.Equal(id, (await registry.LookUpAsync("purchase-value", Purchase1, null, references)).Id);
        // Without its reference the same text names an unknown type, and is not the registered schema.
        Assert.Equal(42201, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.LookUpAsync("purchase-value", Purchase1))).ErrorCode);
        Assert.Equal([id], await registry.ReferencedByAsync("buyer-value", 1));
    }

    [Fact]
    public async Task Bad_references_are_refused_by_name_and_a_named_version_cannot_be_deleted()
    {
        using var registry = Open();
        var missing = await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("purchase-value", Purchase1, null, [new("Herald.Schemas.Tests.Buyer", "buyer-value", 1)]));
        Assert.Equal(42201, missing.ErrorCode);
        Assert.Contains("reference 'Herald.Schemas.Tests.Buyer'", missing.Message, StringComparison.Ordinal);
        await registry.RegisterAsync("buyer-value", Buyer1);
        Assert.Equal(42201, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("purchase-value", Purchase1, null, [new("", "buyer-value", 1)]))).ErrorCode);
        Assert.Equal(42201, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("purchase-value", Purchase1, null, [new("a", "buyer-value", 1), new("a", "buyer-value", 1)]))).ErrorCode);
        // -1 is the latest version, pinned at registration.
        var id = await registry.RegisterAsync("purchase-value", Purchase1, null, [new("Herald.Schemas.Tests.Buyer", "buyer-value", -1)]);
        Assert.Equal([new SchemaReference("Herald.Schemas.Tests.Buyer", "buyer-value", 1)], (await registry.GetByIdAsync(id)).References);

        var named = await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.DeleteVersionAsync("buyer-value", 1));
        Assert.Equal(42206, named.ErrorCode);
        Assert.Equal(42206, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.DeleteSubjectAsync("buyer-value"))).ErrorCode);
        // Once the referring versions are gone for good, it can go.
        await registry.DeleteSubjectAsync("purchase-value");
        await registry.DeleteSubjectAsync("purchase-value", permanent: true);
        await registry.DeleteVersionAsync("buyer-value", 1);
    }

    [Fact]
    public async Task Compatibility_follows_references_into_the_referenced_types()
    {
        using var registry = Open();
        await registry.RegisterAsync("buyer-value", Buyer1);
        await registry.SetLevelAsync("buyer-value", CompatibilityLevel.None);
        await registry.RegisterAsync("buyer-value", BuyerWithoutDefault);
        await registry.RegisterAsync("purchase-value", Purchase1, null, [new("Herald.Schemas.Tests.Buyer", "buyer-value", 1)]);
        // The same purchase schema over buyer version 2 reads version-1 purchases no more: phone has no default.
        var result = await registry.TestCompatibilityAsync("purchase-value", Purchase1, null, null, [new("Herald.Schemas.Tests.Buyer", "buyer-value", 2)]);
        Assert.False(result.IsCompatible);
        Assert.Contains(result.Differences, d => d.Path == "Purchase.buyer.phone");
        Assert.Equal(409, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("purchase-value", Purchase1, null, [new("Herald.Schemas.Tests.Buyer", "buyer-value", 2)]))).ErrorCode);
    }

    [Fact]
    public async Task Records_whose_writer_schema_has_references_are_read()
    {
        using var registry = Open();
        await registry.RegisterAsync("buyer-value", Buyer1);
        var writer = await registry.RegisterAsync("purchase-value", Purchase1, null, [new("Herald.Schemas.Tests.Buyer", "buyer-value", 1)]);
        // Written with the referencing schema's id, as a producer that registered it writes.
        var whole = SchemaCompatibility.ParseAvro(AvroSchemaGenerator.For<Purchase>());
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        new AvroCodec<Purchase>(whole).Write(new Purchase("p-1", new Buyer("Ada", "ada@example.com")), writer, buffer);
        var serializer = new AvroEventSerializer(registry);
        Assert.Equal(new Purchase("p-1", new Buyer("Ada", "ada@example.com")), serializer.Deserialize<Purchase>(buffer.WrittenSpan));
    }

    private const string Address1 = """{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}},"required":["street"],"additionalProperties":false,"definitions":{"code":{"type":"string"}}}""";
    private const string Address2 = """{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string"}},"required":["street","zip"],"additionalProperties":false}""";
    private const string Order = """{"type":"object","properties":{"id":{"type":"string"},"shipTo":{"$ref":"address.json"},"code":{"$ref":"address.json#/definitions/code"}},"required":["id"],"additionalProperties":false}""";

    [Fact]
    public async Task A_JSON_Schema_refers_to_another_document_and_is_checked_through_it()
    {
        using var registry = Open();
        await registry.RegisterAsync("address", Address1, EmbeddedSchemaRegistry.Json);
        await registry.SetLevelAsync("address", CompatibilityLevel.None);
        await registry.RegisterAsync("address", Address2, EmbeddedSchemaRegistry.Json);
        var id = await registry.RegisterAsync("order-value", Order, EmbeddedSchemaRegistry.Json, [new("address.json", "address", 1)]);
        Assert.Equal([new SchemaReference("address.json", "address", 1)], (await registry.GetByIdAsync(id)).References);
        Assert.True((await registry.TestCompatibilityAsync("order-value", Order, null, EmbeddedSchemaRegistry.Json, [new("address.json", "address", 1)])).IsCompatible);
        // Over address version 2 (zip now required) the order no longer reads version-1 orders.
        var result = await registry.TestCompatibilityAsync("order-value", Order.Replace("address.json#/definitions/code", "#/properties/id", StringComparison.Ordinal), null, EmbeddedSchemaRegistry.Json, [new("address.json", "address", 2)]);
        Assert.False(result.IsCompatible);
        Assert.Contains(result.Differences, d => d.ToString().Contains("zip", StringComparison.Ordinal));
        // A reference to an Avro schema is not a JSON document.
        await registry.RegisterAsync("buyer-value", Buyer1);
        Assert.Equal(42201, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("other-value", Order, EmbeddedSchemaRegistry.Json, [new("address.json", "buyer-value", 1)]))).ErrorCode);
    }
}
