using System.Buffers;
using System.Collections.Concurrent;
using Avro;
using Avro.Generic;
using Avro.IO;
using Herald.Schemas.Wire;

namespace Herald.Schemas.Avro;

/// <summary>
/// Avro records of <typeparamref name="T"/> in the Confluent wire format, encoded by Apache.Avro.
/// Writing uses the type's schema and its registry id. Reading takes the writer's schema by the id
/// in the record (cached per id) and resolves it against the type's schema by Avro's resolution
/// rules: data written with an older version reads into the new type (fields it lacked take their
/// defaults), and the reverse where the rules allow.
/// </summary>
public sealed class AvroCodec<T>
{
    private readonly GenericDatumWriter<object> _writer;
    private readonly ConcurrentDictionary<int, GenericDatumReader<object>> _readers = new();
    private readonly int _maxSize;

    public AvroCodec(Schema schema, int maxSize = ConfluentWireFormat.DefaultMaxSize)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, ConfluentWireFormat.HeaderSize);
        Schema = schema;
        _writer = new GenericDatumWriter<object>(schema);
        _maxSize = maxSize;
    }

    /// <summary>The reader's and writer's schema of <typeparamref name="T"/>.</summary>
    public Schema Schema { get; }

    public void Write(T value, int schemaId, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var datum = AvroObjectMapper.ToAvro(value, Schema, (Schema as NamedSchema)?.Name ?? typeof(T).Name);
        using var stream = new MemoryStream();
        _writer.Write(datum!, new BinaryEncoder(stream));
        if (stream.Length + ConfluentWireFormat.HeaderSize > _maxSize)
            throw new SchemaWireFormatException($"an encoded {typeof(T).Name} of {stream.Length + ConfluentWireFormat.HeaderSize} bytes is over the limit of {_maxSize} bytes", _maxSize);
        ConfluentWireFormat.WriteHeader(output, schemaId);
        output.Write(stream.GetBuffer().AsSpan(0, (int)stream.Length));
    }

    /// <summary>Reads a record written with the schema its id names.</summary>
    /// <param name="writerSchema">The schema of an id (from the registry), or null when the id is unknown.</param>
    public T Read(ReadOnlySpan<byte> data, Func<int, Schema?> writerSchema)
    {
        ArgumentNullException.ThrowIfNull(writerSchema);
        var id = ConfluentWireFormat.ReadSchemaId(data, _maxSize);
        var reader = _readers.TryGetValue(id, out var cached) ? cached : _readers.GetOrAdd(id, i =>
        {
            var written = writerSchema(i) ?? throw new SchemaWireFormatException($"bytes 1-4: schema id {i} is not known to the registry", 1);
            return new GenericDatumReader<object>(written, Schema);
        });
        using var stream = new MemoryStream(data[ConfluentWireFormat.HeaderSize..].ToArray(), writable: false);
        object datum;
        try
        {
            datum = reader.Read(null!, new BinaryDecoder(stream));
        }
        catch (Exception e) when (e is EndOfStreamException or AvroException or InvalidOperationException or IndexOutOfRangeException or ArgumentOutOfRangeException or OverflowException)
        {
            throw new SchemaWireFormatException($"byte {ConfluentWireFormat.HeaderSize + stream.Position}: the Avro payload (schema id {id}) cannot be read: {e.Message}", ConfluentWireFormat.HeaderSize + stream.Position, e);
        }
        if (stream.Position != stream.Length)
            throw new SchemaWireFormatException($"byte {ConfluentWireFormat.HeaderSize + stream.Position}: {stream.Length - stream.Position} bytes left after the Avro record (schema id {id})", ConfluentWireFormat.HeaderSize + stream.Position);
        return (T)AvroObjectMapper.FromAvro(datum, typeof(T), typeof(T).Name)!;
    }
}
