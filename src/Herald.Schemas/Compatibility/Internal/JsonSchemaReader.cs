using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Herald.Schemas.Compatibility.Internal;

/// <summary>What is wrong with a schema, and where (a JSON pointer fragment).</summary>
internal sealed class JsonSchemaError(string pointer, string message) : Exception(message)
{
    public string Pointer { get; } = pointer;
}

/// <summary>
/// Reads a parsed JSON document as a JSON Schema (drafts 4 to 2020-12): checks that every
/// keyword it knows has the right kind of value, wherever it is (a schema in "definitions" that
/// nothing uses is checked too), resolves local "$ref"s ("#", "#/definitions/...", "#/$defs/...",
/// any JSON pointer into the document), and builds the <see cref="JsonSchemaNode"/> graph. A
/// recursive schema is a graph with a cycle through a <see cref="RefNode"/>; a "$ref" that only
/// leads to other "$ref"s in a circle is an error.
/// </summary>
internal sealed class JsonSchemaReader
{
    private static readonly HashSet<string> TypeNames = ["object", "array", "string", "number", "integer", "boolean", "null"];
    private static readonly string[] ObjectKeywords = ["properties", "required", "patternProperties", "additionalProperties", "unevaluatedProperties", "minProperties", "maxProperties", "dependencies", "dependentRequired", "dependentSchemas", "propertyNames"];
    private static readonly string[] ArrayKeywords = ["items", "prefixItems", "additionalItems", "unevaluatedItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains"];
    private static readonly string[] StringKeywords = ["minLength", "maxLength", "pattern", "format"];
    private static readonly string[] NumberKeywords = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];
    private static readonly string[] CountKeywords = ["minProperties", "maxProperties", "minItems", "maxItems", "minContains", "maxContains", "minLength", "maxLength"];
    private static readonly string[] SchemaKeywords = ["additionalProperties", "unevaluatedProperties", "propertyNames", "additionalItems", "unevaluatedItems", "contains", "not", "if", "then", "else"];
    private static readonly string[] SchemaMapKeywords = ["properties", "patternProperties", "definitions", "$defs", "dependentSchemas"];
    private static readonly string[] SchemaArrayKeywords = ["allOf", "anyOf", "oneOf", "prefixItems"];

    private readonly JsonElement _root;
    private readonly string? _rootId;
    private readonly Dictionary<string, JsonSchemaNode> _nodes = new(StringComparer.Ordinal);
    private readonly List<RefNode> _refs = [];

    private JsonSchemaReader(JsonElement root)
    {
        _root = root;
        if (root.ValueKind == JsonValueKind.Object && (root.TryGetProperty("$id", out var id) || root.TryGetProperty("id", out id)) && id.ValueKind == JsonValueKind.String)
            _rootId = id.GetString()!.TrimEnd('#');
    }

    /// <summary>The schema's graph, or a <see cref="JsonSchemaError"/> naming the first problem's path.</summary>
    public static JsonSchemaNode Read(JsonElement root)
    {
        var reader = new JsonSchemaReader(root);
        var node = reader.Read(root, "#");
        reader.ResolveReferences();
        return node;
    }

    private static string Child(string pointer, string token) =>
        pointer + "/" + token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private JsonSchemaNode Read(JsonElement e, string pointer)
    {
        if (_nodes.TryGetValue(pointer, out var known)) return known;
        JsonSchemaNode node;
        if (e.ValueKind == JsonValueKind.True) node = new TrueNode(pointer);
        else if (e.ValueKind == JsonValueKind.False) node = new FalseNode(pointer);
        else if (e.ValueKind != JsonValueKind.Object) throw new JsonSchemaError(pointer, $"a schema is an object or a boolean, not {Kind(e)}");
        else
        {
            ReadSubschemas(e, pointer);
            node = Build(e, pointer);
            node.HasDefault = e.TryGetProperty("default", out _);
        }
        node.Json = JsonSerializer.Serialize(e);
        _nodes[pointer] = node;
        return node;
    }

    /// <summary>Checks the kinds of every keyword known and reads every subschema, used or not.</summary>
    private void ReadSubschemas(JsonElement e, string pointer)
    {
        foreach (var keyword in SchemaKeywords)
            if (e.TryGetProperty(keyword, out var sub)) Read(sub, Child(pointer, keyword));
        foreach (var keyword in SchemaMapKeywords)
        {
            if (!e.TryGetProperty(keyword, out var map)) continue;
            var at = Child(pointer, keyword);
            if (map.ValueKind != JsonValueKind.Object) throw new JsonSchemaError(at, $"\"{keyword}\" is an object of schemas, not {Kind(map)}");
            foreach (var p in map.EnumerateObject())
            {
                if (keyword == "patternProperties") _ = Regex(p.Name, Child(at, p.Name));
                Read(p.Value, Child(at, p.Name));
            }
        }
        foreach (var keyword in SchemaArrayKeywords)
        {
            if (!e.TryGetProperty(keyword, out var list)) continue;
            var at = Child(pointer, keyword);
            if (list.ValueKind != JsonValueKind.Array || (keyword != "prefixItems" && list.GetArrayLength() == 0))
                throw new JsonSchemaError(at, $"\"{keyword}\" is a non-empty array of schemas, not {Describe(list)}");
            var i = 0;
            foreach (var item in list.EnumerateArray()) Read(item, Child(at, (i++).ToString(CultureInfo.InvariantCulture)));
        }
        if (e.TryGetProperty("items", out var items))
        {
            var at = Child(pointer, "items");
            if (items.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in items.EnumerateArray()) Read(item, Child(at, (i++).ToString(CultureInfo.InvariantCulture)));
            }
            else Read(items, at);
        }
        if (e.TryGetProperty("dependencies", out var dependencies))
        {
            var at = Child(pointer, "dependencies");
            if (dependencies.ValueKind != JsonValueKind.Object) throw new JsonSchemaError(at, $"\"dependencies\" is an object, not {Kind(dependencies)}");
            foreach (var p in dependencies.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.Array) _ = Names(p.Value, Child(at, p.Name), "a dependency");
                else Read(p.Value, Child(at, p.Name));
            }
        }
        if (e.TryGetProperty("dependentRequired", out var dependentRequired))
        {
            var at = Child(pointer, "dependentRequired");
            if (dependentRequired.ValueKind != JsonValueKind.Object) throw new JsonSchemaError(at, $"\"dependentRequired\" is an object of arrays of property names, not {Kind(dependentRequired)}");
            foreach (var p in dependentRequired.EnumerateObject()) _ = Names(p.Value, Child(at, p.Name), "a dependency");
        }
        if (e.TryGetProperty("required", out var required)) _ = Names(required, Child(pointer, "required"), "\"required\"");
        foreach (var keyword in CountKeywords)
            if (e.TryGetProperty(keyword, out var count)) _ = Count(count, Child(pointer, keyword), keyword);
        foreach (var keyword in NumberKeywords)
        {
            if (!e.TryGetProperty(keyword, out var number)) continue;
            if (number.ValueKind == JsonValueKind.True || number.ValueKind == JsonValueKind.False)
            {
                if (keyword.StartsWith("exclusive", StringComparison.Ordinal)) continue; // draft 4's form
            }
            var value = Number(number, Child(pointer, keyword), keyword);
            if (keyword == "multipleOf" && value.Value <= 0) throw new JsonSchemaError(Child(pointer, keyword), $"\"multipleOf\" is greater than 0, not {value.Text}");
        }
        if (e.TryGetProperty("pattern", out var pattern))
        {
            if (pattern.ValueKind != JsonValueKind.String) throw new JsonSchemaError(Child(pointer, "pattern"), $"\"pattern\" is a regular expression in a string, not {Kind(pattern)}");
            _ = Regex(pattern.GetString()!, Child(pointer, "pattern"));
        }
        if (e.TryGetProperty("uniqueItems", out var unique) && unique.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw new JsonSchemaError(Child(pointer, "uniqueItems"), $"\"uniqueItems\" is a boolean, not {Kind(unique)}");
        if (e.TryGetProperty("enum", out var values) && values.ValueKind != JsonValueKind.Array)
            throw new JsonSchemaError(Child(pointer, "enum"), $"\"enum\" is an array of values, not {Kind(values)}");
        if (e.TryGetProperty("$ref", out var reference) && reference.ValueKind != JsonValueKind.String)
            throw new JsonSchemaError(Child(pointer, "$ref"), $"\"$ref\" is a string, not {Kind(reference)}");
        if (e.TryGetProperty("type", out var type)) _ = Types(type, Child(pointer, "type"));
    }

    private JsonSchemaNode Build(JsonElement e, string pointer)
    {
        var facets = new List<JsonSchemaNode>();
        if (e.TryGetProperty("type", out var type))
        {
            var types = Types(type, Child(pointer, "type"));
            var typed = types.Select(t => Typed(e, pointer, t)).ToList();
            facets.Add(typed.Count == 1 ? typed[0] : new CombinedNode(pointer, Criterion.AnyOf, CombinedOrigin.TypeArray, typed));
        }
        else
        {
            // As the everit loader does: without "type", the keywords of a type imply a schema of
            // that type (which does not require it).
            if (Has(e, ObjectKeywords)) facets.Add(Typed(e, pointer, "object"));
            if (Has(e, ArrayKeywords)) facets.Add(Typed(e, pointer, "array"));
            if (Has(e, StringKeywords)) facets.Add(Typed(e, pointer, "string"));
            if (Has(e, NumberKeywords)) facets.Add(Typed(e, pointer, "number"));
        }
        if (e.TryGetProperty("enum", out var values)) facets.Add(new EnumNode(pointer, values.EnumerateArray().Select(v => v.Clone()).ToList()));
        if (e.TryGetProperty("const", out var value)) facets.Add(new ConstNode(pointer, value.Clone()));
        if (e.TryGetProperty("not", out var not)) facets.Add(new NotNode(pointer, Read(not, Child(pointer, "not"))));
        foreach (var (keyword, criterion) in new[] { ("allOf", Criterion.AllOf), ("anyOf", Criterion.AnyOf), ("oneOf", Criterion.OneOf) })
        {
            if (!e.TryGetProperty(keyword, out var list)) continue;
            var at = Child(pointer, keyword);
            facets.Add(new CombinedNode(pointer, criterion, CombinedOrigin.Keyword, list.EnumerateArray().Select((s, i) => Read(s, Child(at, i.ToString(CultureInfo.InvariantCulture)))).ToList()));
        }
        if (e.TryGetProperty("$ref", out var reference))
        {
            var node = new RefNode(pointer, Local(reference.GetString()!, Child(pointer, "$ref")));
            _refs.Add(node);
            facets.Add(node);
        }
        return facets.Count switch
        {
            0 => new TrueNode(pointer),
            1 => facets[0],
            _ => new CombinedNode(pointer, Criterion.AllOf, CombinedOrigin.Facets, facets),
        };
    }

    private static bool Has(JsonElement e, string[] keywords)
    {
        foreach (var keyword in keywords)
            if (e.TryGetProperty(keyword, out _)) return true;
        return false;
    }

    private JsonSchemaNode Typed(JsonElement e, string pointer, string type) => type switch
    {
        "object" => ReadObject(e, pointer),
        "array" => ReadArray(e, pointer),
        "string" => new StringNode(pointer)
        {
            MinLength = OptionalNumber(e, pointer, "minLength"),
            MaxLength = OptionalNumber(e, pointer, "maxLength"),
            Pattern = e.TryGetProperty("pattern", out var p) ? p.GetString() : null,
        },
        "number" or "integer" => new NumberNode(pointer, type == "integer")
        {
            Minimum = OptionalNumber(e, pointer, "minimum"),
            Maximum = OptionalNumber(e, pointer, "maximum"),
            ExclusiveMinimum = OptionalNumber(e, pointer, "exclusiveMinimum"),
            ExclusiveMaximum = OptionalNumber(e, pointer, "exclusiveMaximum"),
            MultipleOf = OptionalNumber(e, pointer, "multipleOf"),
        },
        "boolean" => new BooleanNode(pointer),
        _ => new NullNode(pointer),
    };

    private ObjectNode ReadObject(JsonElement e, string pointer)
    {
        var properties = new Dictionary<string, JsonSchemaNode>(StringComparer.Ordinal);
        if (e.TryGetProperty("properties", out var ps))
            foreach (var p in ps.EnumerateObject()) properties[p.Name] = Read(p.Value, Child(Child(pointer, "properties"), p.Name));
        var patterns = new List<(Regex, JsonSchemaNode)>();
        if (e.TryGetProperty("patternProperties", out var pps))
            foreach (var p in pps.EnumerateObject()) patterns.Add((Regex(p.Name, pointer), Read(p.Value, Child(Child(pointer, "patternProperties"), p.Name))));
        var permits = true;
        JsonSchemaNode? additional = null;
        if (e.TryGetProperty("additionalProperties", out var ap))
        {
            if (ap.ValueKind == JsonValueKind.False) permits = false;
            else if (ap.ValueKind == JsonValueKind.Object) additional = Read(ap, Child(pointer, "additionalProperties"));
        }
        var propertyDependencies = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        var schemaDependencies = new Dictionary<string, JsonSchemaNode>(StringComparer.Ordinal);
        string propertyKeyword = "dependencies", schemaKeyword = "dependencies";
        if (e.TryGetProperty("dependencies", out var ds))
        {
            foreach (var d in ds.EnumerateObject())
            {
                if (d.Value.ValueKind == JsonValueKind.Array) propertyDependencies[d.Name] = Names(d.Value, pointer, "a dependency");
                else schemaDependencies[d.Name] = Read(d.Value, Child(Child(pointer, "dependencies"), d.Name));
            }
        }
        if (e.TryGetProperty("dependentRequired", out var dr))
        {
            propertyKeyword = "dependentRequired";
            foreach (var d in dr.EnumerateObject()) propertyDependencies[d.Name] = Names(d.Value, pointer, "a dependency");
        }
        if (e.TryGetProperty("dependentSchemas", out var dsc))
        {
            schemaKeyword = "dependentSchemas";
            foreach (var d in dsc.EnumerateObject()) schemaDependencies[d.Name] = Read(d.Value, Child(Child(pointer, "dependentSchemas"), d.Name));
        }
        return new ObjectNode(pointer)
        {
            Properties = properties,
            Required = e.TryGetProperty("required", out var r) ? Names(r, pointer, "\"required\"") : new HashSet<string>(),
            PatternProperties = patterns,
            PermitsAdditionalProperties = permits,
            AdditionalProperties = additional,
            UnevaluatedProperties = e.TryGetProperty("unevaluatedProperties", out var up) ? Read(up, Child(pointer, "unevaluatedProperties")) : null,
            MinProperties = OptionalNumber(e, pointer, "minProperties"),
            MaxProperties = OptionalNumber(e, pointer, "maxProperties"),
            PropertyDependencies = propertyDependencies,
            SchemaDependencies = schemaDependencies,
            PropertyDependenciesKeyword = propertyKeyword,
            SchemaDependenciesKeyword = schemaKeyword,
        };
    }

    private ArrayNode ReadArray(JsonElement e, string pointer)
    {
        JsonSchemaNode? all = null;
        IReadOnlyList<JsonSchemaNode>? tuple = null;
        string tupleKeyword = "items", additionalKeyword = "additionalItems";
        JsonElement additional = default;
        var hasAdditional = e.TryGetProperty("additionalItems", out additional);
        if (e.TryGetProperty("prefixItems", out var prefix))
        {
            tupleKeyword = "prefixItems";
            tuple = prefix.EnumerateArray().Select((s, i) => Read(s, Child(Child(pointer, "prefixItems"), i.ToString(CultureInfo.InvariantCulture)))).ToList();
            if (e.TryGetProperty("items", out var rest))
            {
                additionalKeyword = "items";
                additional = rest;
                hasAdditional = true;
            }
        }
        else if (e.TryGetProperty("items", out var items))
        {
            if (items.ValueKind == JsonValueKind.Array)
                tuple = items.EnumerateArray().Select((s, i) => Read(s, Child(Child(pointer, "items"), i.ToString(CultureInfo.InvariantCulture)))).ToList();
            else all = Read(items, Child(pointer, "items"));
        }
        var permits = true;
        JsonSchemaNode? additionalSchema = null;
        if (hasAdditional)
        {
            if (additional.ValueKind == JsonValueKind.False) permits = false;
            else if (additional.ValueKind == JsonValueKind.Object) additionalSchema = Read(additional, Child(pointer, additionalKeyword));
        }
        return new ArrayNode(pointer)
        {
            AllItems = all,
            ItemSchemas = tuple,
            PermitsAdditionalItems = permits,
            AdditionalItems = additionalSchema,
            UnevaluatedItems = e.TryGetProperty("unevaluatedItems", out var ui) ? Read(ui, Child(pointer, "unevaluatedItems")) : null,
            MinItems = OptionalNumber(e, pointer, "minItems"),
            MaxItems = OptionalNumber(e, pointer, "maxItems"),
            MinContains = OptionalNumber(e, pointer, "minContains"),
            MaxContains = OptionalNumber(e, pointer, "maxContains"),
            UniqueItems = e.TryGetProperty("uniqueItems", out var u) && u.ValueKind == JsonValueKind.True,
            TupleKeyword = tupleKeyword,
            AdditionalItemsKeyword = additionalKeyword,
        };
    }

    private static JsonNumber? OptionalNumber(JsonElement e, string pointer, string keyword) =>
        e.TryGetProperty(keyword, out var v) && v.ValueKind == JsonValueKind.Number ? Number(v, Child(pointer, keyword), keyword) : null;

    private static JsonNumber Number(JsonElement e, string pointer, string keyword)
    {
        if (e.ValueKind != JsonValueKind.Number) throw new JsonSchemaError(pointer, $"\"{keyword}\" is a number, not {Kind(e)}");
        if (e.TryGetDecimal(out var d)) return new JsonNumber(d, e.GetRawText());
        // Beyond decimal's range (1e40): as near as decimal can be, keeping the text for messages.
        var x = e.GetDouble();
        return new JsonNumber(x > 0 ? decimal.MaxValue : decimal.MinValue, e.GetRawText());
    }

    private static JsonNumber Count(JsonElement e, string pointer, string keyword)
    {
        var n = Number(e, pointer, keyword);
        if (n.Value < 0 || n.Value != decimal.Truncate(n.Value)) throw new JsonSchemaError(pointer, $"\"{keyword}\" is a non-negative integer, not {n.Text}");
        return n;
    }

    private static HashSet<string> Names(JsonElement e, string pointer, string what)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new JsonSchemaError(pointer, $"{what} is an array of property names, not {Kind(e)}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var name in e.EnumerateArray())
        {
            if (name.ValueKind != JsonValueKind.String) throw new JsonSchemaError(Child(pointer, i.ToString(CultureInfo.InvariantCulture)), $"a property name is a string, not {Kind(name)}");
            names.Add(name.GetString()!);
            i++;
        }
        return names;
    }

    private static List<string> Types(JsonElement e, string pointer)
    {
        if (e.ValueKind == JsonValueKind.String)
        {
            var name = e.GetString()!;
            return TypeNames.Contains(name) ? [name] : throw new JsonSchemaError(pointer, $"\"{name}\" is not a type (one of {string.Join(", ", TypeNames)})");
        }
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() == 0)
            throw new JsonSchemaError(pointer, $"\"type\" is a type name or a non-empty array of them, not {Describe(e)}");
        var types = new List<string>();
        var i = 0;
        foreach (var t in e.EnumerateArray())
        {
            var at = Child(pointer, i.ToString(CultureInfo.InvariantCulture));
            if (t.ValueKind != JsonValueKind.String || !TypeNames.Contains(t.GetString()!))
                throw new JsonSchemaError(at, $"{Describe(t)} is not a type (one of {string.Join(", ", TypeNames)})");
            if (types.Contains(t.GetString()!)) throw new JsonSchemaError(at, $"type \"{t.GetString()}\" appears twice");
            types.Add(t.GetString()!);
            i++;
        }
        return types;
    }

    private static Regex Regex(string pattern, string pointer)
    {
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new JsonSchemaError(pointer, $"\"{pattern}\" is not a regular expression: {e.Message}");
        }
    }

    /// <summary>A "$ref" as the canonical pointer of a place in this document.</summary>
    private string Local(string reference, string pointer)
    {
        var fragment = reference;
        if (_rootId is not null && fragment.StartsWith(_rootId + "#", StringComparison.Ordinal)) fragment = fragment[_rootId.Length..];
        if (fragment.Length == 0 || fragment[0] != '#' || (fragment.Length > 1 && fragment[1] != '/'))
            throw new JsonSchemaError(pointer, $"$ref '{reference}' is not a local reference (#/...); Herald resolves references within the schema only");
        var canonical = "#";
        if (fragment.Length > 1)
        {
            foreach (var token in fragment[2..].Split('/'))
                canonical = Child(canonical, Uri.UnescapeDataString(token).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
        }
        return canonical;
    }

    private void ResolveReferences()
    {
        // Reading a referred place may add references: until none is left unresolved.
        for (var i = 0; i < _refs.Count; i++)
        {
            var reference = _refs[i];
            if (!_nodes.TryGetValue(reference.Target, out var target))
            {
                var element = Find(reference.Target) ?? throw new JsonSchemaError(Child(reference.Pointer, "$ref"), $"$ref '{reference.Target}' does not resolve to anything in the schema");
                target = Read(element, reference.Target);
            }
            reference.Referred = target;
        }
        foreach (var reference in _refs)
        {
            var seen = new HashSet<RefNode>();
            for (JsonSchemaNode n = reference; n is RefNode r; n = r.Referred!)
                if (!seen.Add(r)) throw new JsonSchemaError(Child(reference.Pointer, "$ref"), $"$ref '{reference.Target}' leads only to references, in a circle");
        }
    }

    private JsonElement? Find(string canonical)
    {
        var e = _root;
        if (canonical == "#") return e;
        foreach (var escaped in canonical[2..].Split('/'))
        {
            var token = escaped.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty(token, out var next)) e = next;
            else if (e.ValueKind == JsonValueKind.Array && int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < e.GetArrayLength()) e = e[index];
            else return null;
        }
        return e;
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string Describe(JsonElement e) => e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 0 ? "an empty array" : e.ValueKind is JsonValueKind.Object or JsonValueKind.Array ? Kind(e) : e.GetRawText();
}
