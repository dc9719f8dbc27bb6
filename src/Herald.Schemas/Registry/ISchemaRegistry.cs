namespace Herald.Schemas.Registry;

/// <summary>What a serializer needs of a schema registry: the embedded one, or (later) a client
/// of a remote Confluent-compatible one. Failures are <see cref="SchemaRegistryException"/>s with
/// Confluent's error codes.</summary>
public interface ISchemaRegistry
{
    /// <summary>Registers a schema under a subject (checked at the subject's level); its global id.</summary>
    Task<int> RegisterAsync(string subject, string schema, string? schemaType = null, CancellationToken cancellationToken = default);

    /// <summary>The subject's version holding this schema; 40401 or 40403 when it has none.</summary>
    Task<RegisteredSchema> LookUpAsync(string subject, string schema, string? schemaType = null, bool includeDeleted = false, CancellationToken cancellationToken = default);

    /// <summary>The schema with a global id; 40403 when there is none.</summary>
    Task<(string SchemaType, string Schema)> GetByIdAsync(int id, CancellationToken cancellationToken = default);
}
