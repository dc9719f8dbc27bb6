using System.Globalization;
using System.Text.Json;
using Avro;
using Herald.Schemas.Compatibility.Internal;

namespace Herald.Schemas.Compatibility;

/// <summary>One breaking difference between a new schema and an older version.</summary>
/// <param name="Version">Which older schema (1 for the first given, oldest first).</param>
/// <param name="Direction">Which way the data went when it broke.</param>
/// <param name="Path">Where. Avro: record and field names from the root type, <c>[]</c> for array
/// items, <c>{}</c> for map values. JSON Schema: a JSON pointer fragment into the schemas, as
/// Confluent's registry writes them (<c>#/properties/lines/items/properties/sku</c>; <c>#/</c> for the root).</param>
/// <param name="Message">What, in the terms of the change (added, removed, changed).</param>
public sealed record SchemaDifference(int Version, CompatibilityDirection Direction, string Path, string Message)
{
    public override string ToString() => $"{(Path.Length == 0 ? "(root)" : Path)}: {Message} ({(Direction == CompatibilityDirection.Backward ? "the new schema cannot read data written with" : "data written with the new schema cannot be read with")} version {Version})";
}

/// <summary>The outcome of a check: compatible, or each breaking difference with its path.</summary>
public sealed record CompatibilityResult(CompatibilityLevel Level, IReadOnlyList<SchemaDifference> Differences)
{
    public bool IsCompatible => Differences.Count == 0;
}

/// <summary>A schema that could not be read: the parse error and where it is.</summary>
public sealed class InvalidSchemaException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Checks a new schema against older versions of a subject at a compatibility level, as
/// Confluent's Schema Registry does: non-transitive levels against the newest older version only,
/// transitive levels against every one; backward means the new schema reads the older one's data,
/// forward the reverse, full both.
/// </summary>
public static class SchemaCompatibility
{
    /// <summary>Parses an Avro schema (JSON), or throws naming what is wrong.</summary>
    public static Schema ParseAvro(string json, string? what = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var schema = Schema.Parse(json);
            // Apache.Avro accepts some malformed schemas ({"type":"nope"}) and fails only when it
            // writes them out: write it out once here.
            _ = schema.ToString();
            return schema;
        }
        catch (Exception e) when (e is SchemaParseException or AvroException or Newtonsoft.Json.JsonException)
        {
            throw new InvalidSchemaException($"{what ?? "schema"} is not a valid Avro schema: {e.Message}", e);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidCastException or ArgumentException or KeyNotFoundException or FormatException)
        {
            // Apache.Avro fails this way on some malformed schemas ({"type":"nope"}).
            throw new InvalidSchemaException($"{what ?? "schema"} is not a valid Avro schema: Apache.Avro could not parse it ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Checks Avro schemas given as JSON; <paramref name="older"/> oldest first.</summary>
    public static CompatibilityResult CheckAvro(string newSchema, IReadOnlyList<string> older, CompatibilityLevel level)
    {
        ArgumentNullException.ThrowIfNull(older);
        return CheckAvro(ParseAvro(newSchema, "the new schema"), older.Select((s, i) => ParseAvro(s, $"version {i + 1}")).ToList(), level);
    }

    /// <summary>Checks parsed Avro schemas; <paramref name="older"/> oldest first.</summary>
    public static CompatibilityResult CheckAvro(Schema newSchema, IReadOnlyList<Schema> older, CompatibilityLevel level)
    {
        ArgumentNullException.ThrowIfNull(newSchema);
        ArgumentNullException.ThrowIfNull(older);
        return Check(newSchema, older, level, (writer, reader, direction) =>
            AvroResolution.Check(reader, writer).Select(b => (b.Path, Describe(b, direction))));
    }

    /// <summary>Parses a JSON Schema (drafts 4 to 2020-12), or throws naming what is wrong: the
    /// line and byte position of invalid JSON, the schema path (<c>#/properties/amount/type</c>) of
    /// a keyword with the wrong kind of value or of a local <c>$ref</c> that resolves to nothing.
    /// Only local references (<c>#</c>, <c>#/definitions/...</c>, <c>#/$defs/...</c>) are resolved.</summary>
    public static JsonElement ParseJson(string json, string? what = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        var (element, _) = ReadJson(json, what);
        return element;
    }

    /// <summary>Checks JSON Schemas as Confluent's registry does (its STRICT policy, the default);
    /// <paramref name="older"/> oldest first.</summary>
    public static CompatibilityResult CheckJson(string newSchema, IReadOnlyList<string> older, CompatibilityLevel level)
    {
        ArgumentNullException.ThrowIfNull(newSchema);
        ArgumentNullException.ThrowIfNull(older);
        var parsedNew = ReadJson(newSchema, "the new schema").Schema;
        var parsedOlder = older.Select((s, i) => ReadJson(s, $"version {i + 1}").Schema).ToList();
        return CheckJson(parsedNew, parsedOlder, level);
    }

    /// <summary>Checks JSON Schemas parsed with <see cref="ParseJson"/>; <paramref name="older"/> oldest first.</summary>
    public static CompatibilityResult CheckJson(JsonElement newSchema, IReadOnlyList<JsonElement> older, CompatibilityLevel level)
    {
        ArgumentNullException.ThrowIfNull(older);
        return CheckJson(ReadJsonSchema(newSchema, "the new schema"), older.Select((s, i) => ReadJsonSchema(s, $"version {i + 1}")).ToList(), level);
    }

    private static CompatibilityResult CheckJson(JsonSchemaNode newSchema, IReadOnlyList<JsonSchemaNode> older, CompatibilityLevel level) =>
        Check(newSchema, older, level, (writer, reader, direction) =>
            JsonSchemaDiff.Compare(writer, reader).Select(c => (c.Path, c.Message(direction))));

    private static (JsonElement Element, JsonSchemaNode Schema) ReadJson(string json, string? what)
    {
        JsonElement element;
        try
        {
            using var document = JsonDocument.Parse(json);
            element = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            // System.Text.Json counts lines and bytes from 0; people count from 1.
            var reason = e.Message;
            var at = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (at >= 0) reason = reason[..at];
            var where = e.LineNumber is { } line
                ? string.Create(CultureInfo.InvariantCulture, $" at line {line + 1}, byte position {(e.BytePositionInLine ?? 0) + 1}")
                : "";
            throw new InvalidSchemaException($"{what ?? "schema"} is not valid JSON{where}: {reason}", e);
        }
        return (element, ReadJsonSchema(element, what));
    }

    private static JsonSchemaNode ReadJsonSchema(JsonElement element, string? what)
    {
        try
        {
            return JsonSchemaReader.Read(element);
        }
        catch (JsonSchemaError e)
        {
            throw new InvalidSchemaException($"{what ?? "schema"} is not a valid JSON Schema: {e.Pointer}: {e.Message}", e);
        }
    }

    /// <summary>The levels' loop, for every kind of schema: which older versions, in which
    /// directions; <paramref name="differences"/> gives the paths and messages of what keeps
    /// data written with one schema from being read with the other.</summary>
    private static CompatibilityResult Check<T>(T newSchema, IReadOnlyList<T> older, CompatibilityLevel level, Func<T, T, CompatibilityDirection, IEnumerable<(string Path, string Message)>> differences)
    {
        var found = new List<SchemaDifference>();
        if (older.Count == 0) return new CompatibilityResult(level, found);
        var from = level.IsTransitive() ? 0 : older.Count - 1;
        for (var i = from; i < older.Count; i++)
        {
            foreach (var direction in level.Directions())
            {
                var (writer, reader) = direction == CompatibilityDirection.Backward ? (older[i], newSchema) : (newSchema, older[i]);
                foreach (var (path, message) in differences(writer, reader, direction))
                    found.Add(new SchemaDifference(i + 1, direction, path, message));
            }
        }
        return new CompatibilityResult(level, found);
    }

    /// <summary>A break in the terms of the change from the older schema to the new one.</summary>
    private static string Describe(Break b, CompatibilityDirection direction)
    {
        var backward = direction == CompatibilityDirection.Backward; // reader = new, writer = older
        var (newSide, oldSide) = backward ? (b.Reader, b.Writer) : (b.Writer, b.Reader);
        return b.Kind switch
        {
            BreakKind.FieldWithoutDefault => backward
                ? "field added without default"
                : "field removed, and the older schema has no default for it",
            BreakKind.EnumSymbols => backward
                ? $"enum symbols removed ({b.Writer}) and the new enum has no default"
                : $"enum symbols added ({b.Writer}) and the older enum has no default",
            BreakKind.UnionBranch => backward
                ? $"union branch {b.Writer} removed"
                : $"union branch {b.Writer} added",
            BreakKind.Name => $"named type renamed from '{oldSide}' to '{newSide}' without an alias",
            BreakKind.FixedSize => $"fixed size changed from {oldSide} to {newSide} bytes",
            _ => $"type changed from {oldSide} to {newSide} ({b.Reader} cannot read {b.Writer})",
        };
    }
}
