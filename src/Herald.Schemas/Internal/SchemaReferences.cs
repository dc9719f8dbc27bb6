using System.Text.Json;
using System.Text.Json.Nodes;
using Herald.Schemas.Compatibility;
using Herald.Schemas.Registry;

namespace Herald.Schemas.Internal;

/// <summary>
/// Schemas that name schemas of other subjects (Confluent's schema references), made whole: an
/// Avro schema parsed with its references' named types defined first, and a JSON Schema bundled
/// into one document, each referenced schema under <c>$defs</c> and each <c>$ref</c> to it
/// rewritten to point there. References are followed at most <see cref="MaxDepth"/> deep, and a
/// cycle is an invalid schema.
/// </summary>
internal static class SchemaReferences
{
    public const int MaxDepth = 32;

    /// <summary>Checks the references are well formed: a name, a subject and a version of at least 1
    /// (-1, the latest, is allowed too), no name twice.</summary>
    public static void Validate(IReadOnlyList<SchemaReference> references)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < references.Count; i++)
        {
            var r = references[i] ?? throw new InvalidSchemaException($"references[{i}] is null");
            if (string.IsNullOrWhiteSpace(r.Name)) throw new InvalidSchemaException($"references[{i}].name is empty");
            if (string.IsNullOrWhiteSpace(r.Subject)) throw new InvalidSchemaException($"references[{i}].subject is empty");
            if (r.Version is 0 or < -1) throw new InvalidSchemaException($"references[{i}].version {r.Version} is not a version (1 or more, or -1 for the latest)");
            if (!names.Add(r.Name)) throw new InvalidSchemaException($"references[{i}].name '{r.Name}' is given twice");
        }
    }

    /// <summary>An Avro schema with the named types of its references (and theirs) defined.</summary>
    public static global::Avro.Schema ParseAvro(string schema, IReadOnlyList<SchemaReference> references, Func<SchemaReference, StoredSchema> resolve, string? what = null)
    {
        if (references.Count == 0) return SchemaCompatibility.ParseAvro(schema, what);
        var names = new global::Avro.SchemaNames();
        var defined = new HashSet<(string, int)>();
        foreach (var reference in references) DefineAvro(reference, resolve, names, defined, [], 1);
        return ParseAvroWith(schema, names, what ?? "schema");
    }

    private static void DefineAvro(SchemaReference reference, Func<SchemaReference, StoredSchema> resolve, global::Avro.SchemaNames names, HashSet<(string, int)> defined, List<SchemaReference> path, int depth)
    {
        var referenced = Resolve(reference, resolve, path, depth);
        if (!defined.Add((reference.Subject, reference.Version))) return;
        path.Add(reference);
        foreach (var inner in referenced.References) DefineAvro(inner, resolve, names, defined, path, depth + 1);
        path.RemoveAt(path.Count - 1);
        if (referenced.SchemaType != EmbeddedSchemaRegistry.Avro)
            throw new InvalidSchemaException($"reference '{reference.Name}' ({reference.Subject} version {reference.Version}) is a {referenced.SchemaType} schema, not Avro");
        ParseAvroWith(referenced.Schema, names, $"reference '{reference.Name}' ({reference.Subject} version {reference.Version})");
    }

    private static global::Avro.Schema ParseAvroWith(string schema, global::Avro.SchemaNames names, string what)
    {
        try
        {
            var parsed = global::Avro.Schema.Parse(schema, names, null);
            _ = parsed.ToString(); // as SchemaCompatibility.ParseAvro: some malformed schemas fail only when written
            return parsed;
        }
        catch (Exception e) when (e is global::Avro.SchemaParseException or global::Avro.AvroException or Newtonsoft.Json.JsonException or NullReferenceException or InvalidCastException or ArgumentException or KeyNotFoundException or FormatException)
        {
            throw new InvalidSchemaException($"{what} is not a valid Avro schema: {e.Message}", e);
        }
    }

    /// <summary>A JSON Schema and its references as one document (the schema itself when it has none).</summary>
    public static string BundleJson(string schema, IReadOnlyList<SchemaReference> references, Func<SchemaReference, StoredSchema> resolve)
    {
        if (references.Count == 0) return schema;
        var root = ParseJsonNode(schema, "schema");
        if (root is not JsonObject rootObject) return schema; // a boolean schema names nothing
        var defs = new JsonObject();
        var keys = new Dictionary<(string, int), string>();
        Rewrite(rootObject, MapNames(references, resolve, defs, keys, [], 1), "");
        var bundled = rootObject["$defs"] as JsonObject ?? [];
        foreach (var (key, value) in defs.ToList())
        {
            defs.Remove(key);
            bundled[key] = value;
        }
        rootObject["$defs"] = bundled;
        return rootObject.ToJsonString();
    }

    /// <summary>Puts each reference (and its own, first) under <paramref name="defs"/>; how the
    /// referring document's names map to their places.</summary>
    private static Dictionary<string, string> MapNames(IReadOnlyList<SchemaReference> references, Func<SchemaReference, StoredSchema> resolve, JsonObject defs, Dictionary<(string, int), string> keys, List<SchemaReference> path, int depth)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var reference in references)
        {
            var referenced = Resolve(reference, resolve, path, depth);
            if (referenced.SchemaType != EmbeddedSchemaRegistry.Json)
                throw new InvalidSchemaException($"reference '{reference.Name}' ({reference.Subject} version {reference.Version}) is a {referenced.SchemaType} schema, not JSON Schema");
            if (!keys.TryGetValue((reference.Subject, reference.Version), out var key))
            {
                key = $"herald-ref-{keys.Count}";
                keys.Add((reference.Subject, reference.Version), key);
                path.Add(reference);
                var inner = MapNames(referenced.References, resolve, defs, keys, path, depth + 1);
                path.RemoveAt(path.Count - 1);
                var document = ParseJsonNode(referenced.Schema, $"reference '{reference.Name}'");
                if (document is JsonObject o) Rewrite(o, inner, "/$defs/" + key);
                defs[key] = document;
            }
            map[reference.Name] = "#/$defs/" + key;
        }
        return map;
    }

    /// <summary>Rewrites the <c>$ref</c>s of a document placed at <paramref name="at"/> (a JSON
    /// pointer within the bundle): to a reference's place, or, when local, below the new place.</summary>
    private static void Rewrite(JsonNode node, Dictionary<string, string> names, string at)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["$ref"] is JsonValue v && v.TryGetValue<string>(out var target))
                {
                    var hash = target.IndexOf('#', StringComparison.Ordinal);
                    var (document, fragment) = hash < 0 ? (target, "") : (target[..hash], target[(hash + 1)..]);
                    if (document.Length == 0) { if (at.Length > 0) o["$ref"] = "#" + at + fragment; }
                    else if (names.TryGetValue(document, out var place)) o["$ref"] = place + fragment;
                    else if (names.TryGetValue(target, out var whole)) o["$ref"] = whole;
                }
                foreach (var (_, child) in o.ToList())
                    if (child is not null) Rewrite(child, names, at);
                break;
            case JsonArray a:
                foreach (var child in a.ToList())
                    if (child is not null) Rewrite(child, names, at);
                break;
        }
    }

    private static StoredSchema Resolve(SchemaReference reference, Func<SchemaReference, StoredSchema> resolve, List<SchemaReference> path, int depth)
    {
        if (depth > MaxDepth) throw new InvalidSchemaException($"references are nested more than {MaxDepth} deep (at '{reference.Name}')");
        if (path.Exists(p => p.Subject == reference.Subject && p.Version == reference.Version))
            throw new InvalidSchemaException($"reference '{reference.Name}' ({reference.Subject} version {reference.Version}) refers back to itself: {string.Join(" -> ", path.Select(p => p.Name))} -> {reference.Name}");
        try
        {
            return resolve(reference);
        }
        catch (SchemaRegistryException e) when (e.ErrorCode is 40401 or 40402)
        {
            throw new InvalidSchemaException($"reference '{reference.Name}': {reference.Subject} version {reference.Version} is not registered ({e.Message})", e);
        }
    }

    private static JsonNode ParseJsonNode(string text, string what)
    {
        try
        {
            return JsonNode.Parse(text) ?? throw new InvalidSchemaException($"{what} is JSON null, not a schema");
        }
        catch (JsonException e)
        {
            throw new InvalidSchemaException($"{what} is not JSON: {e.Message}", e);
        }
    }
}
