using Herald.Schemas.Compatibility;

namespace Herald.Schemas.Tests;

/// <summary>The Avro specification's schema resolution rules, one row each: can a reader with
/// the first schema read data written with the second, and if not, at which path and why.</summary>
public class AvroResolutionTests
{
    private static string Rec(string fields, string name = "R", string extra = "") =>
        $$"""{"type":"record","name":"{{name}}"{{extra}},"fields":[{{fields}}]}""";

    private static string F(string name, string type, string extra = "") => $$"""{"name":"{{name}}","type":{{type}}{{extra}}}""";

    /// <summary>reader, writer, breaking path (null when it reads), kind.</summary>
    public static TheoryData<string, string, string, string?, string?> Rules => new()
    {
        // Primitives: equal, or promoted.
        { "same int", "\"int\"", "\"int\"", null, null },
        { "int to long", "\"long\"", "\"int\"", null, null },
        { "int to float", "\"float\"", "\"int\"", null, null },
        { "int to double", "\"double\"", "\"int\"", null, null },
        { "long to float", "\"float\"", "\"long\"", null, null },
        { "long to double", "\"double\"", "\"long\"", null, null },
        { "float to double", "\"double\"", "\"float\"", null, null },
        { "string to bytes", "\"bytes\"", "\"string\"", null, null },
        { "bytes to string", "\"string\"", "\"bytes\"", null, null },
        { "long to int: no promotion", "\"int\"", "\"long\"", "", "Type" },
        { "double to float: no promotion", "\"float\"", "\"double\"", "", "Type" },
        { "float to long: no promotion", "\"long\"", "\"float\"", "", "Type" },
        { "int to string: no promotion", "\"string\"", "\"int\"", "", "Type" },
        { "boolean to int", "\"int\"", "\"boolean\"", "", "Type" },
        { "null to null", "\"null\"", "\"null\"", null, null },
        // Logical types resolve as their underlying types.
        { "timestamp-millis from long", """{"type":"long","logicalType":"timestamp-millis"}""", "\"long\"", null, null },
        { "decimal from bytes", """{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}""", "\"bytes\"", null, null },
        // Records: fields by name, defaults for fields the writer lacks, writer's extra fields ignored.
        { "same record", Rec(F("a", "\"int\"")), Rec(F("a", "\"int\"")), null, null },
        { "field added with default", Rec(F("a", "\"int\"") + "," + F("b", "\"string\"", ",\"default\":\"x\"")), Rec(F("a", "\"int\"")), null, null },
        { "field added with a null default", Rec(F("a", "\"int\"") + "," + F("b", "[\"null\",\"string\"]", ",\"default\":null")), Rec(F("a", "\"int\"")), null, null },
        { "field added without default", Rec(F("a", "\"int\"") + "," + F("b", "\"string\"")), Rec(F("a", "\"int\"")), "R.b", "FieldWithoutDefault" },
        { "writer's extra field ignored", Rec(F("a", "\"int\"")), Rec(F("a", "\"int\"") + "," + F("b", "\"string\"")), null, null },
        { "field promoted", Rec(F("a", "\"long\"")), Rec(F("a", "\"int\"")), null, null },
        { "field narrowed", Rec(F("a", "\"int\"")), Rec(F("a", "\"long\"")), "R.a", "Type" },
        { "field renamed with an alias", Rec(F("b", "\"int\"", ",\"aliases\":[\"a\"]")), Rec(F("a", "\"int\"")), null, null },
        { "field renamed without an alias", Rec(F("b", "\"int\"")), Rec(F("a", "\"int\"")), "R.b", "FieldWithoutDefault" },
        { "record renamed", Rec(F("a", "\"int\""), "S"), Rec(F("a", "\"int\"")), "S", "Name" },
        { "record renamed with an alias", Rec(F("a", "\"int\""), "S", ",\"aliases\":[\"R\"]"), Rec(F("a", "\"int\"")), null, null },
        { "record's namespace differs", Rec(F("a", "\"int\""), "R", ",\"namespace\":\"x\""), Rec(F("a", "\"int\""), "R", ",\"namespace\":\"y\""), null, null },
        { "nested record's field added without default",
            Rec(F("inner", Rec(F("a", "\"int\"") + "," + F("b", "\"int\""), "Inner"))),
            Rec(F("inner", Rec(F("a", "\"int\""), "Inner"))), "R.inner.b", "FieldWithoutDefault" },
        // Enums: a writer's symbol the reader lacks needs the reader's default.
        { "enum symbol added to the reader", """{"type":"enum","name":"E","symbols":["A","B","C"]}""", """{"type":"enum","name":"E","symbols":["A","B"]}""", null, null },
        { "enum symbol unknown to the reader", """{"type":"enum","name":"E","symbols":["A"]}""", """{"type":"enum","name":"E","symbols":["A","B"]}""", "E", "EnumSymbols" },
        { "enum symbol unknown, reader has a default", """{"type":"enum","name":"E","symbols":["A","U"],"default":"U"}""", """{"type":"enum","name":"E","symbols":["A","B"]}""", null, null },
        { "enum renamed", """{"type":"enum","name":"F","symbols":["A"]}""", """{"type":"enum","name":"E","symbols":["A"]}""", "F", "Name" },
        // Fixed: names and sizes.
        { "same fixed", """{"type":"fixed","name":"X","size":16}""", """{"type":"fixed","name":"X","size":16}""", null, null },
        { "fixed size changed", """{"type":"fixed","name":"X","size":8}""", """{"type":"fixed","name":"X","size":16}""", "X", "FixedSize" },
        // Arrays and maps resolve their items and values.
        { "array items promoted", """{"type":"array","items":"long"}""", """{"type":"array","items":"int"}""", null, null },
        { "array items narrowed", Rec(F("xs", """{"type":"array","items":"int"}""")), Rec(F("xs", """{"type":"array","items":"long"}""")), "R.xs[]", "Type" },
        { "map values narrowed", Rec(F("m", """{"type":"map","values":"float"}""")), Rec(F("m", """{"type":"map","values":"double"}""")), "R.m{}", "Type" },
        { "array to map", """{"type":"map","values":"int"}""", """{"type":"array","items":"int"}""", "", "Type" },
        // Unions.
        { "writer union a subset of the reader's", "[\"null\",\"int\",\"string\"]", "[\"null\",\"int\"]", null, null },
        { "writer union with a branch the reader lacks", "[\"null\",\"int\"]", "[\"null\",\"int\",\"string\"]", "", "UnionBranch" },
        { "writer union branch promoted into the reader's", "[\"null\",\"long\"]", "[\"null\",\"int\"]", null, null },
        { "non-union writer read by a reader's union", "[\"null\",\"string\"]", "\"string\"", null, null },
        { "non-union writer no reader branch reads", "[\"null\",\"string\"]", "\"int\"", "", "Type" },
        { "union writer, non-union reader, every branch readable", "\"long\"", "[\"int\",\"long\"]", null, null },
        { "union writer, non-union reader, a branch unreadable", "\"string\"", "[\"null\",\"string\"]", "", "Type" },
        { "field made optional", Rec(F("a", "[\"null\",\"int\"]", ",\"default\":null")), Rec(F("a", "\"int\"")), null, null },
        { "optional field made required", Rec(F("a", "\"int\"")), Rec(F("a", "[\"null\",\"int\"]")), "R.a", "Type" },
        // Recursion: a linked list reads itself, and a change deep inside is found once.
        { "recursive record", Rec(F("v", "\"int\"") + "," + F("next", "[\"null\",\"R\"]"), "R"), Rec(F("v", "\"int\"") + "," + F("next", "[\"null\",\"R\"]"), "R"), null, null },
        { "recursive record with a field added without default",
            Rec(F("v", "\"int\"") + "," + F("w", "\"int\"") + "," + F("next", "[\"null\",\"R\"]"), "R"),
            Rec(F("v", "\"int\"") + "," + F("next", "[\"null\",\"R\"]"), "R"), "R.w", "FieldWithoutDefault" },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void A_rule_of_schema_resolution(string rule, string reader, string writer, string? path, string? kind)
    {
        var breaks = AvroResolution.Check(SchemaCompatibility.ParseAvro(reader), SchemaCompatibility.ParseAvro(writer));
        if (path is null)
        {
            Assert.True(breaks.Count == 0, $"{rule}: expected to read, got {string.Join("; ", breaks)}");
            return;
        }
        var b = Assert.Single(breaks);
        Assert.Equal(path, b.Path);
        Assert.Equal(kind, b.Kind.ToString());
    }
}
