using System.Buffers;
using Avro.Generic;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Confluent.Kafka;
using Confluent.SchemaRegistry.Serdes;
using Herald.Schemas.Avro;

namespace Herald.Bench.Serde;

/// <summary>serde, Avro: one OrderPlaced to the Confluent wire format (magic byte, schema id,
/// Avro binary) and back. Herald's AvroEventSerializer maps the POCO itself; Confluent's
/// AvroSerializer/AvroDeserializer are measured with a GenericRecord (built once in setup, as a
/// caller holding generic data would have it) and with an avrogen-style ISpecificRecord, through
/// their async API as Confluent.Kafka's producer and consumer call them. All three write under one
/// schema (Herald's generated one) and setup checks that each reads the others' records. Schemas
/// are registered in setup; after that every serializer has the ids cached, and the registry's request counter
/// (printed at cleanup) shows the measured loop made no HTTP call.</summary>
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class AvroSerde
{
    private const string HeraldTopic = "orders";
    private const string ConfluentTopic = "orders-confluent";

    private SerdeRegistry _registry = null!;

    private readonly OrderPlaced _event = OrderPlaced.Sample();
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private AvroEventSerializer _herald = null!;
    private byte[] _heraldBytes = null!;

    private readonly SerializationContext _context = new(MessageComponentType.Value, ConfluentTopic);
    private GenericRecord _generic = null!;
    private AvroSerializer<GenericRecord> _genericSerializer = null!;
    private AvroDeserializer<GenericRecord> _genericDeserializer = null!;
    private byte[] _genericBytes = null!;
    private Specific.OrderPlaced _specific = null!;
    private AvroSerializer<Specific.OrderPlaced> _specificSerializer = null!;
    private AvroDeserializer<Specific.OrderPlaced> _specificDeserializer = null!;
    private byte[] _specificBytes = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _registry = await SerdeRegistry.StartAsync();
        var generated = AvroSchemaGenerator.For<OrderPlaced>().Replace("\"namespace\":\"Herald.Bench.Serde\"", "\"namespace\":\"Herald.Bench.Serde.Specific\"", StringComparison.Ordinal);
        if (global::Avro.Schema.Parse(generated).ToString() != Specific.OrderPlaced._SCHEMA.ToString())
            throw new InvalidOperationException($"the specific record's schema is not Herald's schema of OrderPlaced: {generated}");

        // Herald is given its generated schema in the specific record's namespace, so that every
        // serializer writes under one schema id and each reads the others' records (Avro resolves
        // records by full name; the POCO's own namespace would not resolve to the specific class).
        _herald = new AvroEventSerializer(_registry.Http, new AvroEventSerializerOptions { Schemas = { [typeof(OrderPlaced)] = generated } });
        _herald.Serialize(_event, HeraldTopic, _buffer);
        _heraldBytes = _buffer.WrittenSpan.ToArray();
        _event.CheckRoundTrip(_herald.Deserialize<OrderPlaced>(_heraldBytes), "Herald");

        _generic = ToGeneric(_event);
        _genericSerializer = new AvroSerializer<GenericRecord>(_registry.Client);
        _genericDeserializer = new AvroDeserializer<GenericRecord>(_registry.Client);
        _genericBytes = await _genericSerializer.SerializeAsync(_generic, _context);
        var genericBack = await _genericDeserializer.DeserializeAsync(_genericBytes, isNull: false, _context);
        if ((string)genericBack["customerId"] != _event.CustomerId || ((object[])genericBack["lines"]).Length != _event.Lines.Count)
            throw new InvalidOperationException("Confluent's generic round trip lost the order");

        _specific = ToSpecific(_event);
        _specificSerializer = new AvroSerializer<Specific.OrderPlaced>(_registry.Client);
        _specificDeserializer = new AvroDeserializer<Specific.OrderPlaced>(_registry.Client);
        _specificBytes = await _specificSerializer.SerializeAsync(_specific, _context);
        var specificBack = await _specificDeserializer.DeserializeAsync(_specificBytes, isNull: false, _context);
        if (specificBack.customerId != _event.CustomerId || specificBack.lines.Count != _event.Lines.Count || specificBack.placedAt != _event.PlacedAt.UtcDateTime)
            throw new InvalidOperationException("Confluent's specific round trip lost the order");

        // Each side reads the other's records.
        _event.CheckRoundTrip(_herald.Deserialize<OrderPlaced>(_genericBytes), "Herald, of Confluent's generic bytes,");
        _event.CheckRoundTrip(_herald.Deserialize<OrderPlaced>(_specificBytes), "Herald, of Confluent's specific bytes,");
        var heraldBySpecific = await _specificDeserializer.DeserializeAsync(_heraldBytes, isNull: false, new SerializationContext(MessageComponentType.Value, HeraldTopic));
        if (heraldBySpecific.orderId != _event.OrderId || heraldBySpecific.total.ToString() != _event.Total.ToString(System.Globalization.CultureInfo.InvariantCulture) || heraldBySpecific.lines.Count != _event.Lines.Count)
            throw new InvalidOperationException("Confluent's specific deserializer, of Herald's bytes: the order read back differs");
        var heraldByGeneric = await _genericDeserializer.DeserializeAsync(_heraldBytes, isNull: false, new SerializationContext(MessageComponentType.Value, HeraldTopic));
        if ((string)heraldByGeneric["customerId"] != _event.CustomerId || (string?)heraldByGeneric["couponCode"] != _event.CouponCode)
            throw new InvalidOperationException("Confluent's generic deserializer, of Herald's bytes: the order read back differs");

        // The same Avro binary after the 5-byte header: every serializer does the same work.
        if (!_heraldBytes.AsSpan(5).SequenceEqual(_genericBytes.AsSpan(5)) || !_heraldBytes.AsSpan(5).SequenceEqual(_specificBytes.AsSpan(5)))
            throw new InvalidOperationException($"the payloads differ: Herald {Convert.ToHexString(_heraldBytes)}, generic {Convert.ToHexString(_genericBytes)}, specific {Convert.ToHexString(_specificBytes)}");
        _registry.SetupDone();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _registry.Report("serde-avro", $"bytes={_heraldBytes.Length}");
        await _registry.DisposeAsync();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("serialize")]
    public int Herald_avro_serialize()
    {
        _buffer.ResetWrittenCount();
        _herald.Serialize(_event, HeraldTopic, _buffer);
        return _buffer.WrittenCount;
    }

    [Benchmark, BenchmarkCategory("serialize")]
    public Task<byte[]> Confluent_avro_generic_serialize() => _genericSerializer.SerializeAsync(_generic, _context);

    [Benchmark, BenchmarkCategory("serialize")]
    public Task<byte[]> Confluent_avro_specific_serialize() => _specificSerializer.SerializeAsync(_specific, _context);

    [Benchmark(Baseline = true), BenchmarkCategory("deserialize")]
    public OrderPlaced Herald_avro_deserialize() => _herald.Deserialize<OrderPlaced>(_heraldBytes);

    [Benchmark, BenchmarkCategory("deserialize")]
    public Task<GenericRecord> Confluent_avro_generic_deserialize() => _genericDeserializer.DeserializeAsync(_genericBytes, isNull: false, _context);

    [Benchmark, BenchmarkCategory("deserialize")]
    public Task<Specific.OrderPlaced> Confluent_avro_specific_deserialize() => _specificDeserializer.DeserializeAsync(_specificBytes, isNull: false, _context);

    private static GenericRecord ToGeneric(OrderPlaced e)
    {
        var schema = (global::Avro.RecordSchema)Specific.OrderPlaced._SCHEMA;
        var lineSchema = (global::Avro.RecordSchema)((global::Avro.ArraySchema)schema["lines"].Schema).ItemSchema;
        var record = new GenericRecord(schema);
        record.Add("orderId", e.OrderId);
        record.Add("customerId", e.CustomerId);
        record.Add("currency", e.Currency);
        record.Add("itemCount", e.ItemCount);
        record.Add("total", new global::Avro.AvroDecimal(e.Total));
        record.Add("placedAt", e.PlacedAt.UtcDateTime);
        record.Add("status", new GenericEnum((global::Avro.EnumSchema)schema["status"].Schema, e.Status.ToString()));
        record.Add("couponCode", e.CouponCode);
        var lines = new object[e.Lines.Count];
        for (var i = 0; i < lines.Length; i++)
        {
            var line = new GenericRecord(lineSchema);
            line.Add("sku", e.Lines[i].Sku);
            line.Add("quantity", e.Lines[i].Quantity);
            line.Add("unitPrice", e.Lines[i].UnitPrice);
            lines[i] = line;
        }
        record.Add("lines", lines);
        return record;
    }

    private static Specific.OrderPlaced ToSpecific(OrderPlaced e)
    {
        var lines = new List<Specific.OrderLine>(e.Lines.Count);
        foreach (var l in e.Lines) lines.Add(new Specific.OrderLine { sku = l.Sku, quantity = l.Quantity, unitPrice = l.UnitPrice });
        return new Specific.OrderPlaced
        {
            orderId = e.OrderId,
            customerId = e.CustomerId,
            currency = e.Currency,
            itemCount = e.ItemCount,
            total = new global::Avro.AvroDecimal(e.Total),
            placedAt = e.PlacedAt.UtcDateTime,
            status = (Specific.OrderStatus)(int)e.Status,
            couponCode = e.CouponCode,
            lines = lines,
        };
    }
}
