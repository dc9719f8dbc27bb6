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
    private readonly ConcurrentDictionary<Type, object> _codecs = new();
    private readonly SubjectSchemas<global::Avro.Schema> _schemas;

    public AvroEventSerializer(ISchemaRegistry registry, AvroEventSerializerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _options = options ?? new AvroEventSerializerOptions();
        _options.Validate();
        _schemas = new SubjectSchemas<global::Avro.Schema>(registry, _options, EmbeddedSchemaRegistry.Avro,
            (id, stored, referenced) => SchemaReferences.ParseAvro(stored.Schema, stored.References, referenced, $"schema {id}"));
    }

    public string ContentType => "application/avro";

    private AvroCodec<T> Codec<T>() => (AvroCodec<T>)_codecs.GetOrAdd(typeof(T), t =>
        new AvroCodec<T>(Compatibility.SchemaCompatibility.ParseAvro(_options.Schemas.TryGetValue(t, out var given) ? given : AvroSchemaGenerator.For(t), $"the schema of {t.Name}"), _options.MaxSize));

    public void Serialize<T>(T value, string topic, IBufferWriter<byte> output)
    {
        var codec = Codec<T>();
        var id = _schemas.IdOf(typeof(T), topic, (codec.Schema as global::Avro.NamedSchema)?.Fullname ?? typeof(T).FullName!, codec.Schema.ToString());
        codec.Write(value, id, output);
    }

    /// <summary>Without a topic only the record-name strategy can name the subject.</summary>
    public void Serialize<T>(T value, IBufferWriter<byte> output)
    {
        _schemas.RequireRecordNames(nameof(AvroEventSerializer));
        Serialize(value, "", output);
    }

    public T Deserialize<T>(ReadOnlySpan<byte> data) => Codec<T>().Read(data, _schemas.WriterSchema);
}
