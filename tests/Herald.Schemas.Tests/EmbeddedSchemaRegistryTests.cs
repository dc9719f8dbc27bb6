using Herald.Schemas.Compatibility;
using Herald.Schemas.Registry;

namespace Herald.Schemas.Tests;

/// <summary>The embedded registry's semantics, as Confluent's: global ids, versions, levels,
/// soft and hard deletes, and its error codes; on a real SQLite file, reopened.</summary>
public sealed class EmbeddedSchemaRegistryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-registry-");
    private string DbPath => Path.Combine(_dir.FullName, "registry.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private const string V1 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"}]}""";
    private const string V2 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"},{"name":"currency","type":"string","default":"USD"}]}""";
    private const string Breaking = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"},{"name":"total","type":"double"}]}""";

    private static (string, string) Parts(StoredSchema s) => (s.SchemaType, s.Schema);

    [Fact]
    public async Task Ids_are_global_and_versions_per_subject_and_a_registration_is_durable()
    {
        using (var registry = EmbeddedSchemaRegistry.Open(DbPath))
        {
            var id = await registry.RegisterAsync("orders-value", V1);
            Assert.Equal(id, await registry.RegisterAsync("orders-value", V1)); // again: the same
            Assert.Equal(id, await registry.RegisterAsync("orders-value", """{ "type": "record", "name": "OrderPlaced", "fields": [ { "name": "id", "type": "string" } ] }""")); // the same, spaced differently
            Assert.Equal(id, await registry.RegisterAsync("audit-value", V1)); // another subject: the same id
            var id2 = await registry.RegisterAsync("orders-value", V2);
            Assert.NotEqual(id, id2);
            Assert.Equal([1, 2], await registry.ListVersionsAsync("orders-value"));
            Assert.Equal([1], await registry.ListVersionsAsync("audit-value"));
        }
        using (var reopened = EmbeddedSchemaRegistry.Open(DbPath))
        {
            Assert.Equal(["audit-value", "orders-value"], await reopened.ListSubjectsAsync());
            var latest = await reopened.GetVersionAsync("orders-value", -1);
            Assert.Equal((2, V2), (latest.Version, latest.Schema));
            Assert.Equal(("AVRO", V1), Parts(await reopened.GetByIdAsync((await reopened.LookUpAsync("orders-value", V1)).Id)));
        }
    }

    [Fact]
    public async Task An_incompatible_schema_is_refused_with_its_paths_and_nothing_is_written()
    {
        using var registry = EmbeddedSchemaRegistry.Open(DbPath);
        await registry.RegisterAsync("orders-value", V1);
        var refused = await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("orders-value", Breaking));
        Assert.Equal((409, 409), (refused.ErrorCode, refused.HttpStatus));
        Assert.Contains("OrderPlaced.total: field added without default", refused.Message, StringComparison.Ordinal);
        Assert.Equal([1], await registry.ListVersionsAsync("orders-value"));
        Assert.False((await registry.TestCompatibilityAsync("orders-value", Breaking)).IsCompatible);
        Assert.True((await registry.TestCompatibilityAsync("orders-value", V2, version: -1)).IsCompatible);

        await registry.SetLevelAsync("orders-value", CompatibilityLevel.None);
        Assert.Equal(CompatibilityLevel.None, await registry.GetLevelAsync("orders-value"));
        Assert.Equal(CompatibilityLevel.Backward, await registry.GetLevelAsync());
        await registry.RegisterAsync("orders-value", Breaking); // allowed under NONE
        Assert.Equal(CompatibilityLevel.None, await registry.DeleteLevelAsync("orders-value"));
        Assert.Equal(40408, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.GetLevelAsync("orders-value", fallBack: false))).ErrorCode);
        await registry.SetLevelAsync(null, CompatibilityLevel.FullTransitive);
        Assert.Equal(CompatibilityLevel.FullTransitive, await registry.GetLevelAsync("orders-value"));
    }

    [Fact]
    public async Task Soft_deleted_versions_keep_their_ids_and_hard_deletes_need_a_soft_one_first()
    {
        using var registry = EmbeddedSchemaRegistry.Open(DbPath);
        var id1 = await registry.RegisterAsync("s", V1);
        await registry.RegisterAsync("s", V2);
        Assert.Equal(40407, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.DeleteVersionAsync("s", 1, permanent: true))).ErrorCode);
        Assert.Equal(1, await registry.DeleteVersionAsync("s", 1));
        Assert.Equal(40406, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.DeleteVersionAsync("s", 1))).ErrorCode);
        Assert.Equal([2], await registry.ListVersionsAsync("s"));
        Assert.Equal([1, 2], await registry.ListVersionsAsync("s", includeDeleted: true));
        Assert.Equal(("AVRO", V1), Parts(await registry.GetByIdAsync(id1))); // old records still resolve
        Assert.Equal(40402, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.GetVersionAsync("s", 1))).ErrorCode);
        Assert.Equal(1, await registry.DeleteVersionAsync("s", 1, permanent: true));
        Assert.Equal([2], await registry.ListVersionsAsync("s", includeDeleted: true));

        Assert.Equal(40405, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.DeleteSubjectAsync("s", permanent: true))).ErrorCode);
        Assert.Equal([2], await registry.DeleteSubjectAsync("s"));
        Assert.Equal(40404, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.DeleteSubjectAsync("s"))).ErrorCode);
        Assert.Equal(40401, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.ListVersionsAsync("s"))).ErrorCode);
        Assert.Empty(await registry.ListSubjectsAsync());
        Assert.Equal(["s"], await registry.ListSubjectsAsync(includeDeleted: true));
        Assert.Equal([2], await registry.DeleteSubjectAsync("s", permanent: true));
        Assert.Empty(await registry.ListSubjectsAsync(includeDeleted: true));
        // After a subject's versions are gone, registering starts again at version 1... of a new history.
        await registry.RegisterAsync("s", V1);
        Assert.Equal([1], await registry.ListVersionsAsync("s"));
    }

    [Fact]
    public async Task Bad_input_gets_Confluents_error_codes()
    {
        using var registry = EmbeddedSchemaRegistry.Open(DbPath);
        var invalid = await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("s", """{"type":"record","name":"X","fields":[{"name":"a","type":"integer"}]}"""));
        Assert.Equal((42201, 422), (invalid.ErrorCode, invalid.HttpStatus));
        Assert.Contains("integer", invalid.Message, StringComparison.Ordinal);
        Assert.Equal(42201, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("s", """{"type":"object",""", "JSON"))).ErrorCode);
        Assert.Equal(42201, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("s", """{"type":"object"}""", "PROTOBUF"))).ErrorCode);
        Assert.Equal(40403, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.GetByIdAsync(99))).ErrorCode);
        Assert.Equal(40401, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.LookUpAsync("nope", V1))).ErrorCode);
        await registry.RegisterAsync("s", V1);
        Assert.Equal(40403, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.LookUpAsync("s", V2))).ErrorCode);
        Assert.Equal(40402, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.GetVersionAsync("s", 7))).ErrorCode);
        Assert.Equal(42208, (await Assert.ThrowsAsync<SchemaRegistryException>(() => registry.RegisterAsync("", V1))).ErrorCode);
    }
}
