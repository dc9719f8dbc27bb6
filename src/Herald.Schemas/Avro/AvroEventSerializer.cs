using System.Buffers;
using System.Collections.Concurrent;
using Herald.Schemas.Internal;
using Herald.Schemas.Registry;
using Herald.Serialization;

namespace Herald.Schemas.Avro;

/// <summary>The Avro serializer's settings; see <see cref="SchemaSerializerOptions"/>.</summary>
public sealed class AvroEventSerializerOptions : SchemaSerializerOptions;

/// <summary>
/// Herald's events as Avro in the Confluent wire format, with their schemas in a registry
/// (<c>h.UseSerializer(new AvroEventSerializer(registry))</c>). On the first publish of a type to
/// a topic its schema is registered under the subject (or looked up, with
/// <see cref="AvroEventSerializerOptions.AutoRegister"/> off): an incompatible schema fails that
/// publish with each breaking path, before anything is written, and so does an outbox write.
/// Reading takes the writer's schema by the id in the record and resolves it against the
/// handler's type, so older and newer versions read where Avro's rules allow.
/// </summary>
public sealed class AvroEventSerializer : ITopicEventSerializer
{
    private readonly AvroEventSerializerOptions _options;
    /// <summary>Per type, a <see cref="Typed{T}"/>.</summary>
    private readonly ConcurrentDictionary<Type, object> _types = new();
    private readonly SubjectSchemas<global::Avro.Schema> _schemas;

    /// <summary><see cref="SubjectSchemas{T}.WriterSchema"/> as a delegate made once, not per record.</summary>
    private readonly Func<int, global::Avro.Schema?> _writerSchema;

    public AvroEventSerializer(ISchemaRegistry registry, AvroEventSerializerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _options = options ?? new AvroEventSerializerOptions();
        _options.Validate();
        _schemas = new SubjectSchemas<global::Avro.Schema>(registry, _options, EmbeddedSchemaRegistry.Avro,
            (id, stored, referenced) => SchemaReferences.ParseAvro(stored.Schema, stored.References, referenced, $"schema {id}"));
        _writerSchema = _schemas.WriterSchema;
    }

    public string ContentType => "application/avro";

    /// <summary>A type's codec, with its schema's full name and text for the registry: found once
    /// per type, since the schema's text is written out anew by each ToString (bench serde:
    /// Herald_avro_serialize allocated more for that than for the record).</summary>
    private sealed record Typed<T>(AvroCodec<T> Codec, string RecordName, string SchemaText);

    private Typed<T> Of<T>() => _types.TryGetValue(typeof(T), out var known) ? (Typed<T>)known : (Typed<T>)_types.GetOrAdd(typeof(T), static (t, options) =>
    {
        var codec = new AvroCodec<T>(Compatibility.SchemaCompatibility.ParseAvro(options.Schemas.TryGetValue(t, out var given) ? given : AvroSchemaGenerator.For(t), $"the schema of {t.Name}"), options.MaxSize);
        return new Typed<T>(codec, (codec.Schema as global::Avro.NamedSchema)?.Fullname ?? t.FullName!, codec.Schema.ToString());
    }, _options);

    public void Serialize<T>(T value, string topic, IBufferWriter<byte> output)
    {
        var typed = Of<T>();
        typed.Codec.Write(value, _schemas.IdOf(typeof(T), topic, typed.RecordName, typed.SchemaText), output);
    }

    /// <summary>Without a topic only the record-name strategy can name the subject.</summary>
    public void Serialize<T>(T value, IBufferWriter<byte> output)
    {
        _schemas.RequireRecordNames(nameof(AvroEventSerializer));
        Serialize(value, "", output);
    }

    public T Deserialize<T>(ReadOnlySpan<byte> data) => Of<T>().Codec.Read(data, _writerSchema);
}
