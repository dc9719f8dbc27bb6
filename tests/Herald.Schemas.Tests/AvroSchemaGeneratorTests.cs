using System.ComponentModel;
using System.Text.Json.Nodes;
using Herald.Schemas.Avro;
using Herald.Schemas.Compatibility;

namespace Herald.Schemas.Tests.Events;

[DefaultValue(Unknown)]
public enum OrderStatus { Unknown, Placed, Shipped }

public sealed record OrderLine(string Sku, int Quantity);

public sealed record OrderPlaced(
    Guid Id,
    string Customer,
    [property: AvroDecimal(10, 2)] decimal Amount,
    DateTimeOffset PlacedAt,
    IReadOnlyList<OrderLine> Lines,
    Dictionary<string, string> Tags,
    string? Note,
    int? Priority,
    OrderStatus Status,
    string Currency = "USD");

public sealed record OrderPlacedV1(Guid Id, string Customer);

public sealed class Settings
{
    public int Retries { get; set; } = 3;
    public string Name { get; set; } = "default";
    public bool Enabled { get; set; }
    public DateOnly? Since { get; set; }
    public List<long?> Samples { get; set; } = [];
}

public sealed class Node
{
    public int Value { get; set; }
    public Node? Next { get; set; }
}

public sealed class Untyped
{
    public object Payload { get; set; } = new();
}

public class AvroSchemaGeneratorTests
{
    private static JsonObject Field(string schema, string name) =>
        JsonNode.Parse(schema)!["fields"]!.AsArray().Select(f => f!.AsObject()).Single(f => (string)f["name"]! == name);

    [Fact]
    public void A_record_type_becomes_an_Avro_record_Apache_Avro_parses()
    {
        var schema = AvroSchemaGenerator.For<OrderPlaced>();
        var parsed = SchemaCompatibility.ParseAvro(schema);
        Assert.Equal("Herald.Schemas.Tests.Events.OrderPlaced", ((global::Avro.NamedSchema)parsed).Fullname);

        Assert.Equal("""{"type":"string","logicalType":"uuid"}""", Field(schema, "id")["type"]!.ToJsonString());
        Assert.Equal("\"string\"", Field(schema, "customer")["type"]!.ToJsonString());
        Assert.Equal("""{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}""", Field(schema, "amount")["type"]!.ToJsonString());
        Assert.Equal("""{"type":"long","logicalType":"timestamp-micros"}""", Field(schema, "placedAt")["type"]!.ToJsonString());
        Assert.Equal("array", (string)Field(schema, "lines")["type"]!["type"]!);
        Assert.Equal("OrderLine", (string)Field(schema, "lines")["type"]!["items"]!["name"]!);
        Assert.Equal("""{"type":"map","values":"string"}""", Field(schema, "tags")["type"]!.ToJsonString());
        Assert.Equal("""["null","string"]""", Field(schema, "note")["type"]!.ToJsonString());
        Assert.Equal("null", Field(schema, "note")["default"]?.ToJsonString() ?? "null");
        Assert.True(Field(schema, "note").ContainsKey("default"));
        Assert.Equal("""["null","int"]""", Field(schema, "priority")["type"]!.ToJsonString());
        Assert.Equal("Unknown", (string)Field(schema, "status")["type"]!["default"]!);
        Assert.Equal("USD", (string)Field(schema, "currency")["default"]!); // the primary constructor's default
        Assert.False(Field(schema, "customer").ContainsKey("default"));
    }

    [Fact]
    public void Property_initializers_are_defaults_and_a_nullable_with_a_value_puts_its_type_first()
    {
        var schema = AvroSchemaGenerator.For<Settings>();
        SchemaCompatibility.ParseAvro(schema);
        Assert.Equal(3, (int)Field(schema, "retries")["default"]!);
        Assert.Equal("default", (string)Field(schema, "name")["default"]!);
        Assert.False(Field(schema, "enabled").ContainsKey("default")); // false is what no initializer leaves
        Assert.Equal("""["null",{"type":"int","logicalType":"date"}]""", Field(schema, "since")["type"]!.ToJsonString());
        Assert.Equal("""{"type":"array","items":["null","long"]}""", Field(schema, "samples")["type"]!.ToJsonString());
        Assert.Equal("[]", Field(schema, "samples")["default"]!.ToJsonString());
    }

    [Fact]
    public void A_recursive_type_refers_to_itself_by_name()
    {
        var schema = AvroSchemaGenerator.For<Node>();
        SchemaCompatibility.ParseAvro(schema);
        Assert.Equal("""["null","Herald.Schemas.Tests.Events.Node"]""", Field(schema, "next")["type"]!.ToJsonString());
    }

    [Fact]
    public void A_property_Avro_cannot_map_is_an_error_naming_it()
    {
        var e = Assert.Throws<NotSupportedException>(() => AvroSchemaGenerator.For<Untyped>());
        Assert.Contains("Untyped.payload", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generated_versions_are_checked_like_hand_written_ones()
    {
        // OrderPlacedV1 and OrderPlaced under one name, as two versions of one event would be.
        var v1 = AvroSchemaGenerator.For<OrderPlacedV1>().Replace("OrderPlacedV1", "OrderPlaced", StringComparison.Ordinal);
        var v2 = AvroSchemaGenerator.For<OrderPlaced>();
        var result = SchemaCompatibility.CheckAvro(v2, [v1], CompatibilityLevel.Backward);
        // Currency has a default; the other new fields without one break, each by its path.
        Assert.DoesNotContain(result.Differences, d => d.Path == "OrderPlaced.currency");
        Assert.Contains(result.Differences, d => d.Path == "OrderPlaced.amount" && d.Message == "field added without default");
        Assert.DoesNotContain(result.Differences, d => d.Path == "OrderPlaced.note"); // nullable: defaults to null
    }
}
