using Avro;

namespace Herald.Schemas.Compatibility;

/// <summary>One breaking difference between a new schema and an older version.</summary>
/// <param name="Version">Which older schema (1 for the first given, oldest first).</param>
/// <param name="Direction">Which way the data went when it broke.</param>
/// <param name="Path">Where: record and field names from the root type, <c>[]</c> for array items, <c>{}</c> for map values.</param>
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
        var differences = new List<SchemaDifference>();
        if (older.Count == 0) return new CompatibilityResult(level, differences);
        var from = level.IsTransitive() ? 0 : older.Count - 1;
        for (var i = from; i < older.Count; i++)
        {
            foreach (var direction in level.Directions())
            {
                var (reader, writer) = direction == CompatibilityDirection.Backward ? (newSchema, older[i]) : (older[i], newSchema);
                foreach (var b in AvroResolution.Check(reader, writer))
                    differences.Add(new SchemaDifference(i + 1, direction, b.Path, Describe(b, direction)));
            }
        }
        return new CompatibilityResult(level, differences);
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
