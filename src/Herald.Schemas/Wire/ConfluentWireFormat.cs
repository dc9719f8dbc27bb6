using System.Buffers;
using System.Buffers.Binary;

namespace Herald.Schemas.Wire;

/// <summary>A record's bytes that are not in the Confluent wire format, or not within its limits;
/// <see cref="ByteOffset"/> is where in the record's value it went wrong.</summary>
public sealed class SchemaWireFormatException(string message, long byteOffset, Exception? inner = null) : FormatException(message, inner)
{
    public long ByteOffset { get; } = byteOffset;
}

/// <summary>
/// Confluent's wire format, which its serializers and every tool built on them read: a magic
/// byte 0, the schema's registry id as a 4-byte big-endian integer, then the payload (Avro binary,
/// or JSON text for JSON Schema).
/// </summary>
public static class ConfluentWireFormat
{
    public const byte MagicByte = 0;

    /// <summary>The magic byte and the schema id.</summary>
    public const int HeaderSize = 5;

    /// <summary>The largest record value read by default (8 MiB).</summary>
    public const int DefaultMaxSize = 8 * 1024 * 1024;

    public static void WriteHeader(IBufferWriter<byte> output, int schemaId)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(schemaId);
        var span = output.GetSpan(HeaderSize);
        span[0] = MagicByte;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], schemaId);
        output.Advance(HeaderSize);
    }

    /// <summary>The schema id of a record value, and where its payload starts; throws naming the
    /// byte that is wrong.</summary>
    public static int ReadSchemaId(ReadOnlySpan<byte> data, int maxSize = DefaultMaxSize)
    {
        if (data.Length > maxSize)
            throw new SchemaWireFormatException($"record value of {data.Length} bytes is over the limit of {maxSize} bytes", maxSize);
        if (data.Length < HeaderSize)
            throw new SchemaWireFormatException($"record value of {data.Length} bytes is too short for the Confluent wire format (a magic byte and a 4-byte schema id)", data.Length);
        if (data[0] != MagicByte)
            throw new SchemaWireFormatException($"byte 0: magic byte 0x{data[0]:x2} is not 0x00, so this is not the Confluent wire format (written without a schema registry?)", 0);
        var id = BinaryPrimitives.ReadInt32BigEndian(data[1..]);
        if (id < 0) throw new SchemaWireFormatException($"bytes 1-4: schema id {id} is negative", 1);
        return id;
    }
}
