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

    /// <summary>One spare scratch stream; a call that finds it taken (another thread has it)
    /// makes its own, and one of them is kept afterwards.</summary>
    private Scratch? _spare;

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
        // Encoded into a reused pooled buffer, not a new MemoryStream per record (bench serde:
        // Herald_avro_serialize), and copied to the output only once its size is known to be
        // within the limit, so that a record over it leaves the output untouched.
        var scratch = Take();
        try
        {
            var datum = AvroObjectMapper.ToAvro(value, Schema, scratch.Path.Start((Schema as NamedSchema)?.Name ?? typeof(T).Name));
            scratch.Clear();
            _writer.Write(datum!, scratch.Encoder);
            if (scratch.Length + ConfluentWireFormat.HeaderSize > _maxSize)
                throw new SchemaWireFormatException($"an encoded {typeof(T).Name} of {scratch.Length + ConfluentWireFormat.HeaderSize} bytes is over the limit of {_maxSize} bytes", _maxSize);
            ConfluentWireFormat.WriteHeader(output, schemaId);
            output.Write(scratch.Written);
        }
        finally
        {
            Return(scratch);
        }
    }

    /// <summary>Reads a record written with the schema its id names.</summary>
    /// <param name="writerSchema">The schema of an id (from the registry), or null when the id is unknown.</param>
    public T Read(ReadOnlySpan<byte> data, Func<int, Schema?> writerSchema)
    {
        ArgumentNullException.ThrowIfNull(writerSchema);
        var id = ConfluentWireFormat.ReadSchemaId(data, _maxSize);
        var reader = _readers.TryGetValue(id, out var cached) ? cached : Reader(id, writerSchema);
        // The payload is read from a reused pooled buffer, not from a new array and MemoryStream
        // per record (bench serde: Herald_avro_deserialize); Apache.Avro's decoder reads a Stream.
        var scratch = Take();
        try
        {
            object datum;
            scratch.Load(data[ConfluentWireFormat.HeaderSize..]);
            try
            {
                datum = reader.Read(null!, scratch.Decoder);
            }
            catch (Exception e) when (e is EndOfStreamException or AvroException or InvalidOperationException or IndexOutOfRangeException or ArgumentOutOfRangeException or OverflowException)
            {
                throw new SchemaWireFormatException($"byte {ConfluentWireFormat.HeaderSize + scratch.Position}: the Avro payload (schema id {id}) cannot be read: {e.Message}", ConfluentWireFormat.HeaderSize + scratch.Position, e);
            }
            if (scratch.Position != scratch.Length)
                throw new SchemaWireFormatException($"byte {ConfluentWireFormat.HeaderSize + scratch.Position}: {scratch.Length - scratch.Position} bytes left after the Avro record (schema id {id})", ConfluentWireFormat.HeaderSize + scratch.Position);
            return (T)AvroObjectMapper.FromAvro(datum, typeof(T), scratch.Path.Start(typeof(T).Name))!;
        }
        finally
        {
            Return(scratch);
        }
    }

    /// <summary>The reader of a new id; apart from <see cref="Read"/>, whose every call would
    /// otherwise allocate the closure this lambda needs.</summary>
    private GenericDatumReader<object> Reader(int id, Func<int, Schema?> writerSchema) => _readers.GetOrAdd(id, static (i, state) =>
    {
        var written = state.writerSchema(i) ?? throw new SchemaWireFormatException($"bytes 1-4: schema id {i} is not known to the registry", 1);
        return new GenericDatumReader<object>(written, state.Schema);
    }, (writerSchema, Schema));

    private Scratch Take() => Interlocked.Exchange(ref _spare, null) ?? new Scratch();

    private void Return(Scratch scratch)
    {
        scratch.Trim();
        if (Interlocked.CompareExchange(ref _spare, scratch, null) is not null) scratch.Release();
    }

    /// <summary>A growable byte buffer rented from <see cref="ArrayPool{T}.Shared"/>, written by an
    /// Avro encoder or read by a decoder, and the object mapper's path, for one call at a time.</summary>
    private sealed class Scratch : Stream
    {
        /// <summary>A buffer grown past this (a large record) goes back to the pool after the call.</summary>
        private const int KeptSize = 64 * 1024;

        private byte[] _buffer = [];
        private int _length;
        private int _position;

        public Scratch()
        {
            Encoder = new BinaryEncoder(this);
            Decoder = new BinaryDecoder(this);
        }

        public BinaryEncoder Encoder { get; }

        public BinaryDecoder Decoder { get; }

        /// <summary>The object mapper's path, for its error messages.</summary>
        public MapperPath Path { get; } = new();

        public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => true;
        public override long Length => _length;

        /// <summary>As in a MemoryStream, it may be set past the end (a skip over more bytes than
        /// are left), and then nothing more is read.</summary>
        public override long Position
        {
            get => _position;
            set => _position = value is >= 0 and <= int.MaxValue ? (int)value : throw new IOException($"position {value} is outside the record");
        }

        public void Clear() => _length = _position = 0;

        public void Load(ReadOnlySpan<byte> data)
        {
            Clear();
            Reserve(data.Length);
            data.CopyTo(_buffer);
            _length = data.Length;
        }

        public void Trim()
        {
            Clear();
            if (_buffer.Length > KeptSize) Release();
        }

        public void Release()
        {
            if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Reserve(_length + buffer.Length);
            buffer.CopyTo(_buffer.AsSpan(_length));
            _length += buffer.Length;
        }

        public override void WriteByte(byte value)
        {
            Reserve(_length + 1);
            _buffer[_length++] = value;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Max(0, Math.Min(buffer.Length, _length - _position));
            _buffer.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override int ReadByte() => _position < _length ? _buffer[_position++] : -1;

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => _length + offset,
            };
            return _position;
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        private void Reserve(int size)
        {
            if (size <= _buffer.Length) return;
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(size, Math.Max(256, _buffer.Length * 2)));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            Release();
            _buffer = bigger;
        }
    }
}
