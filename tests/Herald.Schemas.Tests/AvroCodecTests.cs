using System.Buffers;
using Herald.Schemas.Avro;
using Herald.Schemas.Compatibility;
using Herald.Schemas.Tests.Events;
using Herald.Schemas.Wire;

namespace Herald.Schemas.Tests;

public sealed record Placed1(Guid Id, decimal Amount);

public sealed record Placed2(Guid Id, decimal Amount, string Currency = "USD");

/// <summary>Avro in the Confluent wire format, encoded by Apache.Avro, read by resolving the
/// writer's schema against the reader's type; and the errors bad bytes get.</summary>
public class AvroCodecTests
{
    private static readonly OrderPlaced Order = new(
        Guid.NewGuid(), "ada", 12.34m, new DateTimeOffset(2026, 12, 7, 17, 0, 0, 123, TimeSpan.Zero),
        [new OrderLine("sku-1", 2), new OrderLine("sku-2", 1)], new Dictionary<string, string> { ["channel"] = "web" },
        null, 3, OrderStatus.Placed, "EUR");

    private static byte[] Write<T>(AvroCodec<T> codec, T value, int id)
    {
        var buffer = new ArrayBufferWriter<byte>();
        codec.Write(value, id, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void An_event_round_trips_through_the_wire_format()
    {
        var codec = new AvroCodec<OrderPlaced>(SchemaCompatibility.ParseAvro(AvroSchemaGenerator.For<OrderPlaced>()));
        var bytes = Write(codec, Order, 42);
        Assert.Equal([0, 0, 0, 0, 42], bytes[..5]);
        var read = codec.Read(bytes, id => id == 42 ? codec.Schema : null);
        Assert.Equal(Order.Id, read.Id);
        Assert.Equal(Order.Amount, read.Amount);
        Assert.Equal(Order.PlacedAt, read.PlacedAt);
        Assert.Equal(Order.Lines, read.Lines);
        Assert.Equal("web", read.Tags["channel"]);
        Assert.Null(read.Note);
        Assert.Equal(3, read.Priority);
        Assert.Equal(OrderStatus.Placed, read.Status);
        Assert.Equal("EUR", read.Currency);

        // A decimal with more digits after the point than the schema's scale (2) is refused, not rounded.
        var tooFine = Assert.Throws<global::Avro.AvroException>(() => Write(codec, Order with { Amount = 1.234m }, 42));
        Assert.Contains("OrderPlaced.amount", tooFine.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Data_written_with_an_older_version_reads_into_the_new_type_by_the_resolution_rules()
    {
        var v1Schema = AvroSchemaGenerator.For<Placed1>().Replace("Placed1", "Placed", StringComparison.Ordinal);
        var v2Schema = AvroSchemaGenerator.For<Placed2>().Replace("Placed2", "Placed", StringComparison.Ordinal);
        Assert.True(SchemaCompatibility.CheckAvro(v2Schema, [v1Schema], CompatibilityLevel.Full).IsCompatible);
        var v1 = new AvroCodec<Placed1>(SchemaCompatibility.ParseAvro(v1Schema));
        var v2 = new AvroCodec<Placed2>(SchemaCompatibility.ParseAvro(v2Schema));
        var id = Guid.NewGuid();
        var old = Write(v1, new Placed1(id, 5m), 1);
        Assert.Equal(new Placed2(id, 5m, "USD"), v2.Read(old, i => i == 1 ? v1.Schema : v2.Schema)); // the default fills the gap
        var newer = Write(v2, new Placed2(id, 7m, "EUR"), 2);
        Assert.Equal(new Placed1(id, 7m), v1.Read(newer, i => i == 2 ? v2.Schema : v1.Schema)); // the old reader skips currency
    }

    [Fact]
    public void Bad_bytes_get_errors_naming_the_byte()
    {
        var codec = new AvroCodec<OrderPlaced>(SchemaCompatibility.ParseAvro(AvroSchemaGenerator.For<OrderPlaced>()), maxSize: 4096);
        var good = Write(codec, Order, 7);
        var magic = Assert.Throws<SchemaWireFormatException>(() => codec.Read([1, .. good[1..]], _ => codec.Schema));
        Assert.Equal(0, magic.ByteOffset);
        Assert.Contains("magic byte 0x01", magic.Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<SchemaWireFormatException>(() => codec.Read(good, _ => null));
        Assert.Contains("schema id 7 is not known", unknown.Message, StringComparison.Ordinal);
        var header = Assert.Throws<SchemaWireFormatException>(() => codec.Read(good.AsSpan(0, 3), _ => codec.Schema));
        Assert.Contains("too short", header.Message, StringComparison.Ordinal);
        var truncated = Assert.Throws<SchemaWireFormatException>(() => codec.Read(good.AsSpan(0, good.Length - 6), _ => codec.Schema));
        Assert.True(truncated.ByteOffset >= 5, truncated.Message);
        Assert.Contains("cannot be read", truncated.Message, StringComparison.Ordinal);
        var oversize = Assert.Throws<SchemaWireFormatException>(() => codec.Read(new byte[5000], _ => codec.Schema));
        Assert.Contains("over the limit of 4096", oversize.Message, StringComparison.Ordinal);
        var trailing = Assert.Throws<SchemaWireFormatException>(() => codec.Read([.. good, 0, 0], _ => codec.Schema));
        Assert.Contains("2 bytes left", trailing.Message, StringComparison.Ordinal);
    }
}
