using System.Collections.Concurrent;
using Herald.Schemas.Registry;

namespace Herald.Schemas.Internal;

/// <summary>The registry side of a schema serializer: the id of each event type's schema per
/// topic (registered, or looked up with auto-registration off, once, then cached) and the schemas
/// of the ids records name (fetched once, then cached).</summary>
/// <param name="parseWriterSchema">A record's writer schema from its id and stored form, given a
/// way to look up the schemas it references.</param>
internal sealed class SubjectSchemas<TWriterSchema>(ISchemaRegistry registry, SchemaSerializerOptions options, string schemaType, Func<int, StoredSchema, Func<SchemaReference, StoredSchema>, TWriterSchema> parseWriterSchema)
{
    private readonly ConcurrentDictionary<(Type, string), int> _ids = new();
    private readonly ConcurrentDictionary<int, TWriterSchema> _writers = new();

    /// <summary>The id of <paramref name="type"/>'s schema (<paramref name="schema"/>, named
    /// <paramref name="recordName"/>) for <paramref name="topic"/>.</summary>
    public int IdOf(Type type, string topic, string recordName, string schema) =>
        _ids.TryGetValue((type, topic), out var known) ? known : FirstIdOf(type, topic, recordName, schema);

    // Apart from IdOf so that its lambda's captures are allocated on the first record only, not on
    // every one (a lambda capturing parameters allocates at the entry of the method it is in).
    private int FirstIdOf(Type type, string topic, string recordName, string schema) =>
        _ids.GetOrAdd((type, topic), _ => Register(topic, recordName, schema));

    /// <summary>The writer's schema of a record's id; a <see cref="Wire.SchemaWireFormatException"/>
    /// at bytes 1-4 when the id names a schema of another type.</summary>
    public TWriterSchema WriterSchema(int id) => _writers.TryGetValue(id, out var known) ? known : _writers.GetOrAdd(id, FetchWriterSchema);

    private TWriterSchema FetchWriterSchema(int i)
    {
        var stored = Wait(registry.GetByIdAsync(i));
        if (!string.Equals(stored.SchemaType, schemaType, StringComparison.OrdinalIgnoreCase))
            throw new Wire.SchemaWireFormatException($"bytes 1-4: schema id {i} is a {stored.SchemaType} schema, not {schemaType}", 1);
        return parseWriterSchema(i, stored, Referenced);
    }

    /// <summary>A referenced schema, looked up once per writer schema that names it (those are cached).</summary>
    private StoredSchema Referenced(SchemaReference reference)
    {
        var found = Wait(registry.GetVersionAsync(reference.Subject, reference.Version, includeDeleted: true));
        return new StoredSchema(found.SchemaType, found.Schema, found.References);
    }

    /// <summary>The subject a record of <paramref name="recordName"/> on <paramref name="topic"/> goes under.</summary>
    public string Subject(string topic, string recordName) => options.SubjectNames switch
    {
        SubjectNameStrategy.TopicName => topic + "-value",
        SubjectNameStrategy.RecordName => recordName,
        _ => topic + "-" + recordName,
    };

    private int Register(string topic, string recordName, string schema)
    {
        var subject = Subject(topic, recordName);
        return options.AutoRegister
            ? Wait(registry.RegisterAsync(subject, schema, schemaType))
            : Wait(registry.LookUpAsync(subject, schema, schemaType)).Id;
    }

    /// <summary>The serializer's interface is synchronous: a registry call is waited for, once per
    /// type and topic or per id (both are cached), within the timeout.</summary>
    private T Wait<T>(Task<T> call)
    {
        try
        {
            return call.WaitAsync(options.RegistryTimeout).GetAwaiter().GetResult();
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"the schema registry did not answer within {options.RegistryTimeout}", e);
        }
    }

    /// <summary>Without a topic only the record-name strategy can name the subject.</summary>
    public void RequireRecordNames(string serializer)
    {
        if (options.SubjectNames != SubjectNameStrategy.RecordName)
            throw new InvalidOperationException($"{serializer} names subjects by topic ({options.SubjectNames}); serialize through Herald's publisher, which gives it the topic");
    }
}
