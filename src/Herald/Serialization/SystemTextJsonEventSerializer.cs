using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Herald.Serialization;

/// <summary>The default serializer: System.Text.Json. Give it options whose
/// <see cref="JsonSerializerOptions.TypeInfoResolver"/> is a source-generated
/// <c>JsonSerializerContext</c> to avoid reflection entirely.</summary>
public sealed class SystemTextJsonEventSerializer : IEventSerializer
{
    private readonly JsonSerializerOptions _options;

    // One writer per thread, reset onto each output: a Utf8JsonWriter costs more to create than
    // the small events it writes (pipeline benchmark).
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    public SystemTextJsonEventSerializer(JsonSerializerOptions? options = null)
    {
        _options = options ?? new JsonSerializerOptions(JsonSerializerDefaults.Web);
        if (_options.TypeInfoResolver is null) _options.TypeInfoResolver = new DefaultJsonTypeInfoResolver();
        _options.MakeReadOnly();
    }

    public string ContentType => "application/json";

    public JsonSerializerOptions Options => _options;

    /// <summary>The type's metadata, kept per type for the serializer that asked last (usually the
    /// only one): GetTypeInfo is a dictionary lookup and a cast per event otherwise.</summary>
    private JsonTypeInfo<T> Info<T>()
    {
        var cached = TypeInfoCache<T>.Entry;
        if (cached is not null && ReferenceEquals(cached.Options, _options)) return cached;
        var info = (JsonTypeInfo<T>)_options.GetTypeInfo(typeof(T));
        TypeInfoCache<T>.Entry = info;
        return info;
    }

    private static class TypeInfoCache<T>
    {
        public static JsonTypeInfo<T>? Entry;
    }

    public void Serialize<T>(T value, IBufferWriter<byte> output)
    {
        var info = Info<T>();
        var writer = t_writer;
        if (writer is null) t_writer = writer = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true });
        else writer.Reset(output);
        try
        {
            JsonSerializer.Serialize(writer, value, info);
            writer.Flush();
        }
        finally
        {
            writer.Reset(NullBufferWriter.Instance);
        }
    }

    public T Deserialize<T>(ReadOnlySpan<byte> data)
    {
        var info = Info<T>();
        return JsonSerializer.Deserialize(data, info) ?? throw new JsonException($"the payload is JSON null, not a {typeof(T).Name}");
    }

    private sealed class NullBufferWriter : IBufferWriter<byte>
    {
        public static readonly NullBufferWriter Instance = new();
        public void Advance(int count) { }
        public Memory<byte> GetMemory(int sizeHint = 0) => Memory<byte>.Empty;
        public Span<byte> GetSpan(int sizeHint = 0) => Span<byte>.Empty;
    }
}
