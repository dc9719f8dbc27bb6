using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;
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

    /// <summary>Whether decoding what this serializer writes for an instance of exactly
    /// <paramref name="type"/> gives back an equal instance, field for field, so that handing the
    /// published instance itself to a handler in this process is the same as decoding it. True only
    /// when every field of the type (and of the types it holds) is the backing field of an
    /// auto-property that is both written and read, with System.Text.Json's own converters and
    /// nothing ignored, renamed into extension data or converted by custom code. Conservative: any
    /// doubt answers false, and the event is then decoded as usual.</summary>
    internal bool RoundTripsExactly(Type type)
    {
        try
        {
            return RoundTrips(type, []);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException)
        {
            return false; // no contract for the type: it would not serialize either
        }
    }

    private bool RoundTrips(Type type, HashSet<Type> visiting)
    {
        var info = _options.GetTypeInfo(type);
        if (!IsBuiltIn(info.Converter)) return false;
        switch (info.Kind)
        {
            case JsonTypeInfoKind.None:
                return true; // a scalar with its built-in converter
            case JsonTypeInfoKind.Enumerable:
                return type.IsGenericType && type.GetGenericTypeDefinition() == typeof(System.Collections.Immutable.ImmutableArray<>)
                    && RoundTrips(type.GetGenericArguments()[0], visiting);
            case JsonTypeInfoKind.Object:
                break;
            default:
                return false;
        }
        if (!visiting.Add(type)) return true;
        if (info.PolymorphismOptions is not null || info.NumberHandling is not null) return false;
        var covered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in info.Properties)
        {
            if (property.IsExtensionData || property.CustomConverter is not null || property.NumberHandling is not null
                || property.ShouldSerialize is not null || property.Get is null
                || property.AttributeProvider is not System.Reflection.PropertyInfo member)
                return false;
            // Written but never read (a computed property): fine as long as the fields it is computed
            // from are carried; its own backing field, if it had one, stays uncovered below.
            if (property.Set is null && property.AssociatedParameter is null) continue;
            if (!RoundTrips(property.PropertyType, visiting)) return false;
            covered.Add(member.Name);
        }
        for (var t = type; t is not null && t != typeof(object) && t != typeof(ValueType); t = t.BaseType)
        {
            foreach (var field in t.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public
                | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.DeclaredOnly))
            {
                // An auto-property's backing field is "<Name>k__BackingField"; any other field holds
                // state that no JSON property carries.
                var name = field.Name;
                if (!(name.StartsWith('<') && name.EndsWith(">k__BackingField", StringComparison.Ordinal)
                    && covered.Contains(name[1..name.IndexOf('>', StringComparison.Ordinal)])))
                    return false;
            }
        }
        return true;
    }

    private static bool IsBuiltIn(JsonConverter converter) => converter.GetType().Assembly == typeof(JsonSerializer).Assembly;

    private sealed class NullBufferWriter : IBufferWriter<byte>
    {
        public static readonly NullBufferWriter Instance = new();
        public void Advance(int count) { }
        public Memory<byte> GetMemory(int sizeHint = 0) => Memory<byte>.Empty;
        public Span<byte> GetSpan(int sizeHint = 0) => Span<byte>.Empty;
    }
}
