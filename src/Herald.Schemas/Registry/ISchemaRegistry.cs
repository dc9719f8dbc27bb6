namespace Herald.Schemas.Registry;

/// <summary>What a serializer needs of a schema registry: the embedded one, or a client of a
/// remote Confluent-compatible one. Failures are <see cref="SchemaRegistryException"/>s with
/// Confluent's error codes.</summary>
public interface ISchemaRegistry
{
    /// <summary>Registers a schema under a subject (checked at the subject's level); its global id.</summary>
    /// <param name="references">The schemas it names from other subjects (Avro named types, JSON Schema <c>$ref</c>s).</param>
    Task<int> RegisterAsync(string subject, string schema, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, CancellationToken cancellationToken = default);

    /// <summary>The subject's version holding this schema; 40401 or 40403 when it has none.</summary>
    Task<RegisteredSchema> LookUpAsync(string subject, string schema, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, bool includeDeleted = false, CancellationToken cancellationToken = default);

    /// <summary>The schema with a global id; 40403 when there is none.</summary>
    Task<StoredSchema> GetByIdAsync(int id, CancellationToken cancellationToken = default);

    /// <summary>A version of a subject (-1 for the latest); 40401 or 40402 when there is none.</summary>
    Task<RegisteredSchema> GetVersionAsync(string subject, int version, bool includeDeleted = false, CancellationToken cancellationToken = default);
}

/// <summary>A schema named by another: <paramref name="Name"/> is how the referring schema names
/// it (an Avro type's full name, a JSON Schema <c>$ref</c>), found at a subject's version.</summary>
public sealed record SchemaReference(string Name, string Subject, int Version);

/// <summary>A schema's text, its type (AVRO, JSON) and the schemas it references.</summary>
public sealed record StoredSchema(string SchemaType, string Schema, IReadOnlyList<SchemaReference> References)
{
    public void Deconstruct(out string schemaType, out string schema)
    {
        schemaType = SchemaType;
        schema = Schema;
    }
}
