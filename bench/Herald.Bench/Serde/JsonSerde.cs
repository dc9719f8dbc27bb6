using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Confluent.Kafka;
using Confluent.SchemaRegistry.Serdes;
using Herald.Schemas.Json;
using Newtonsoft.Json.Serialization;
using NJsonSchema.NewtonsoftJson.Generation;

namespace Herald.Bench.Serde;

/// <summary>serde, JSON: one OrderPlaced to the Confluent wire format (magic byte, schema id,
/// UTF-8 JSON) and back, the same record type for every serializer. Herald's
/// JsonSchemaEventSerializer (System.Text.Json, no payload validation) beside Confluent's
/// JsonSerializer/JsonDeserializer (Newtonsoft.Json, NJsonSchema), measured as configured by
/// default (validating every payload against the schema) and with validation off, the work
/// Herald does; and System.Text.Json alone, with no header and no registry, as the floor. Setup
/// checks that each side reads back what it wrote and what the other wrote; after it the
/// registry's request counter (printed at cleanup) shows the measured loop made no HTTP call.</summary>
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class JsonSerde
{
    private const string HeraldTopic = "orders-json";
    private const string ConfluentTopic = "orders-json-confluent";

    /// <summary>Newtonsoft.Json naming properties in camelCase, as System.Text.Json's web defaults do.</summary>
    private static readonly NewtonsoftJsonSchemaGeneratorSettings CamelCase = new()
    {
        SerializerSettings = new Newtonsoft.Json.JsonSerializerSettings { ContractResolver = new CamelCasePropertyNamesContractResolver() },
    };

    private SerdeRegistry _registry = null!;

    private readonly OrderPlaced _event = OrderPlaced.Sample();
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private JsonSchemaEventSerializer _herald = null!;
    private byte[] _heraldBytes = null!;

    private readonly SerializationContext _context = new(MessageComponentType.Value, ConfluentTopic);
    private JsonSerializer<OrderPlaced> _confluentSerializer = null!;
    private JsonDeserializer<OrderPlaced> _confluentDeserializer = null!;
    private JsonSerializer<OrderPlaced> _unvalidatedSerializer = null!;
    private JsonDeserializer<OrderPlaced> _unvalidatedDeserializer = null!;
    private byte[] _confluentBytes = null!;

    private JsonTypeInfo<OrderPlaced> _stj = null!;
    private Utf8JsonWriter _stjWriter = null!;
    private byte[] _stjBytes = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _registry = await SerdeRegistry.StartAsync();

        _herald = new JsonSchemaEventSerializer(_registry.Http);
        _herald.Serialize(_event, HeraldTopic, _buffer);
        _heraldBytes = _buffer.WrittenSpan.ToArray();
        _event.CheckRoundTrip(_herald.Deserialize<OrderPlaced>(_heraldBytes), "Herald");

        _confluentSerializer = new JsonSerializer<OrderPlaced>(_registry.Client, new JsonSerializerConfig { AutoRegisterSchemas = true }, CamelCase);
        _confluentDeserializer = new JsonDeserializer<OrderPlaced>(_registry.Client, new JsonDeserializerConfig { Validate = true }, CamelCase, null);
        _unvalidatedSerializer = new JsonSerializer<OrderPlaced>(_registry.Client, new JsonSerializerConfig { AutoRegisterSchemas = true, Validate = false }, CamelCase);
        _unvalidatedDeserializer = new JsonDeserializer<OrderPlaced>(_registry.Client, new JsonDeserializerConfig { Validate = false }, CamelCase, null);
        _confluentBytes = await _confluentSerializer.SerializeAsync(_event, _context);
        var unvalidatedBytes = await _unvalidatedSerializer.SerializeAsync(_event, _context);
        if (!_confluentBytes.AsSpan().SequenceEqual(unvalidatedBytes))
            throw new InvalidOperationException("Confluent's serializer writes other bytes with validation off");
        _event.CheckRoundTrip(await _confluentDeserializer.DeserializeAsync(_confluentBytes, isNull: false, _context), "Confluent");
        _event.CheckRoundTrip(await _unvalidatedDeserializer.DeserializeAsync(_confluentBytes, isNull: false, _context), "Confluent (unvalidated)");

        // Each side reads the other's records: Confluent's deserializer validating Herald's JSON
        // against Herald's registered schema, Herald's reading JSON that Newtonsoft wrote.
        _event.CheckRoundTrip(await _confluentDeserializer.DeserializeAsync(_heraldBytes, isNull: false, new SerializationContext(MessageComponentType.Value, HeraldTopic)), "Confluent, of Herald's bytes,");
        _event.CheckRoundTrip(_herald.Deserialize<OrderPlaced>(_confluentBytes), "Herald, of Confluent's bytes,");

        var options = JsonSchemaGenerator.DefaultOptions();
        options.MakeReadOnly();
        _stj = (JsonTypeInfo<OrderPlaced>)options.GetTypeInfo(typeof(OrderPlaced));
        _stjWriter = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
        _stjBytes = _heraldBytes[5..];
        _event.CheckRoundTrip(System.Text.Json.JsonSerializer.Deserialize(_stjBytes, _stj)!, "System.Text.Json");
        _registry.SetupDone();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _registry.Report("serde-json", $"bytes={_heraldBytes.Length} confluent_bytes={_confluentBytes.Length}");
        _stjWriter.Dispose();
        await _registry.DisposeAsync();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("serialize")]
    public int Herald_json_serialize()
    {
        _buffer.ResetWrittenCount();
        _herald.Serialize(_event, HeraldTopic, _buffer);
        return _buffer.WrittenCount;
    }

    [Benchmark, BenchmarkCategory("serialize")]
    public Task<byte[]> Confluent_json_serialize() => _confluentSerializer.SerializeAsync(_event, _context);

    [Benchmark, BenchmarkCategory("serialize")]
    public Task<byte[]> Confluent_json_unvalidated_serialize() => _unvalidatedSerializer.SerializeAsync(_event, _context);

    /// <summary>The floor: System.Text.Json's own cost for the payload, no header, no registry.</summary>
    [Benchmark, BenchmarkCategory("serialize")]
    public int SystemTextJson_serialize()
    {
        _buffer.ResetWrittenCount();
        _stjWriter.Reset(_buffer);
        System.Text.Json.JsonSerializer.Serialize(_stjWriter, _event, _stj);
        _stjWriter.Flush();
        return _buffer.WrittenCount;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("deserialize")]
    public OrderPlaced Herald_json_deserialize() => _herald.Deserialize<OrderPlaced>(_heraldBytes);

    [Benchmark, BenchmarkCategory("deserialize")]
    public Task<OrderPlaced> Confluent_json_deserialize() => _confluentDeserializer.DeserializeAsync(_confluentBytes, isNull: false, _context);

    [Benchmark, BenchmarkCategory("deserialize")]
    public Task<OrderPlaced> Confluent_json_unvalidated_deserialize() => _unvalidatedDeserializer.DeserializeAsync(_confluentBytes, isNull: false, _context);

    [Benchmark, BenchmarkCategory("deserialize")]
    public OrderPlaced SystemTextJson_deserialize() => System.Text.Json.JsonSerializer.Deserialize(_stjBytes, _stj)!;
}
