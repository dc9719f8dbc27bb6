using System.Buffers;
using System.Collections.Concurrent;
using Herald.Schemas.Registry;
using Herald.Serialization;

namespace Herald.Schemas.Avro;

/// <summary>How an event's schema-registry subject is named.</summary>
public enum SubjectNameStrategy
{
    /// <summary><c>&lt;topic&gt;-value</c>: one schema history per topic (Confluent's default).</summary>
    TopicName,

    /// <summary>The record's full name: one history per event type, whatever its topic.</summary>
    RecordName,

    /// <summary><c>&lt;topic&gt;-&lt;record full name&gt;</c>: per event type within a topic.</summary>
    TopicRecordName,
}

public sealed class AvroEventSerializerOptions
{
    /// <summary>Registers an event type's schema on its first publish (checked at the subject's
    /// compatibility level). Off for production: the schema must then be registered already, and a
    /// publish of an unregistered one fails naming the subject.</summary>
    public bool AutoRegister { get; set; } = true;

    public SubjectNameStrategy SubjectNames { get; set; } = SubjectNameStrategy.TopicName;

    /// <summary>A hand-written schema (an <c>.avsc</c>'s text) for a type, instead of the one
    /// <see cref="AvroSchemaGenerator"/> makes of it.</summary>
    public IDictionary<Type, string> Schemas { get; } = new Dictionary<Type, string>();

    /// <summary>The largest record value written or read.</summary>
    public int MaxSize { get; set; } = Wire.ConfluentWireFormat.DefaultMaxSize;

    /// <summary>How long a registry call may take.</summary>
    public TimeSpan RegistryTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Herald's events as Avro in the Confluent wire format, with their schemas in a registry
/// (<c>h.UseSerializer(new AvroEventSerializer(registry))</c>). On the first publish of a type to
/// a topic its schema is registered under the subject (or looked up, with
/// <see cref="AvroEventSerializerOptions.AutoRegister"/> off): an incompatible schema fails that
/// publish with each breaking path, before anything is written, and so does an outbox write.
/// Reading takes the writer's schema by the id in the record and resolves it against the
/// handler's type, so older and newer versions read where Avro's rules allow.
/// </summary>
public sealed class AvroEventSerializer(ISchemaRegistry registry, AvroEventSerializerOptions? options = null) : ITopicEventSerializer
{
    private readonly AvroEventSerializerOptions _options = options ?? new AvroEventSerializerOptions();
    private readonly ConcurrentDictionary<Type, object> _codecs = new();
    private readonly ConcurrentDictionary<(Type, string), int> _ids = new();
    private readonly ConcurrentDictionary<int, global::Avro.Schema> _writers = new();

    public string ContentType => "application/avro";

    private AvroCodec<T> Codec<T>() => (AvroCodec<T>)_codecs.GetOrAdd(typeof(T), t =>
        new AvroCodec<T>(Compatibility.SchemaCompatibility.ParseAvro(_options.Schemas.TryGetValue(t, out var given) ? given : AvroSchemaGenerator.For(t), $"the schema of {t.Name}"), _options.MaxSize));

    public void Serialize<T>(T value, string topic, IBufferWriter<byte> output)
    {
        var codec = Codec<T>();
        var id = _ids.TryGetValue((typeof(T), topic), out var known) ? known : _ids.GetOrAdd((typeof(T), topic), _ => Id(codec, topic));
        codec.Write(value, id, output);
    }

    /// <summary>Without a topic only the record-name strategy can name the subject.</summary>
    public void Serialize<T>(T value, IBufferWriter<byte> output)
    {
        if (_options.SubjectNames != SubjectNameStrategy.RecordName)
            throw new InvalidOperationException($"{nameof(AvroEventSerializer)} names subjects by topic ({_options.SubjectNames}); serialize through Herald's publisher, which gives it the topic");
        Serialize(value, "", output);
    }

    public T Deserialize<T>(ReadOnlySpan<byte> data) => Codec<T>().Read(data, WriterSchema);

    private global::Avro.Schema? WriterSchema(int id) => _writers.GetOrAdd(id, i =>
    {
        var (type, schema) = Wait(registry.GetByIdAsync(i));
        if (type != EmbeddedSchemaRegistry.Avro) throw new Wire.SchemaWireFormatException($"bytes 1-4: schema id {i} is a {type} schema, not Avro", 1);
        return Compatibility.SchemaCompatibility.ParseAvro(schema, $"schema {i}");
    });

    private int Id<T>(AvroCodec<T> codec, string topic)
    {
        var fullName = (codec.Schema as global::Avro.NamedSchema)?.Fullname ?? typeof(T).FullName!;
        var subject = _options.SubjectNames switch
        {
            SubjectNameStrategy.TopicName => topic + "-value",
            SubjectNameStrategy.RecordName => fullName,
            _ => topic + "-" + fullName,
        };
        var text = codec.Schema.ToString();
        return _options.AutoRegister
            ? Wait(registry.RegisterAsync(subject, text))
            : Wait(registry.LookUpAsync(subject, text)).Id;
    }

    /// <summary>The serializer's interface is synchronous: a registry call is waited for, once per
    /// type and topic (the ids are cached), within the timeout.</summary>
    private T Wait<T>(Task<T> call)
    {
        try
        {
            return call.WaitAsync(_options.RegistryTimeout).GetAwaiter().GetResult();
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"the schema registry did not answer within {_options.RegistryTimeout}", e);
        }
    }
}
