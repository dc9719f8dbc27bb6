using System.Text.Json;
using System.Text.RegularExpressions;

namespace Herald.Schemas.Compatibility.Internal;

/// <summary>
/// A JSON Schema read into the shapes Confluent's registry compares (those of the everit loader
/// it uses): one node per kind of constraint. A schema object that constrains in more than one way
/// ({"type":"string","enum":[...]}, {"type":"object","oneOf":[...]}) is an <see cref="CombinedNode"/>
/// of <see cref="CombinedOrigin.Facets"/>, all of which must hold; a "type" array is a
/// <see cref="CombinedOrigin.TypeArray"/> any of whose branches may hold.
/// </summary>
internal abstract class JsonSchemaNode(string pointer)
{
    /// <summary>Where the node is in its document, as a JSON pointer fragment (<c>#/properties/a</c>).</summary>
    public string Pointer { get; } = pointer;

    /// <summary>Whether the schema object carries a "default".</summary>
    public bool HasDefault { get; set; }

    /// <summary>The schema's JSON, compact, to tell equal branches of a combination apart from different ones.</summary>
    public string Json { get; set; } = "";

    /// <summary>How a reader names this kind of node in a message ("string", "integer", "oneOf").</summary>
    public abstract string Label { get; }
}

/// <summary><c>true</c> or <c>{}</c>: anything.</summary>
internal sealed class TrueNode(string pointer) : JsonSchemaNode(pointer)
{
    public override string Label => "any";
}

/// <summary><c>false</c>: nothing.</summary>
internal sealed class FalseNode(string pointer) : JsonSchemaNode(pointer)
{
    public override string Label => "nothing";
}

internal sealed class BooleanNode(string pointer) : JsonSchemaNode(pointer)
{
    public override string Label => "boolean";
}

internal sealed class NullNode(string pointer) : JsonSchemaNode(pointer)
{
    public override string Label => "null";
}

/// <summary>A numeric constraint's value, as written and as a number.</summary>
internal readonly record struct JsonNumber(decimal Value, string Text);

internal sealed class NumberNode(string pointer, bool integer) : JsonSchemaNode(pointer)
{
    public bool RequiresInteger { get; } = integer;
    public JsonNumber? Minimum { get; init; }
    public JsonNumber? Maximum { get; init; }
    public JsonNumber? ExclusiveMinimum { get; init; }
    public JsonNumber? ExclusiveMaximum { get; init; }
    public JsonNumber? MultipleOf { get; init; }
    public override string Label => RequiresInteger ? "integer" : "number";
}

internal sealed class StringNode(string pointer) : JsonSchemaNode(pointer)
{
    public JsonNumber? MinLength { get; init; }
    public JsonNumber? MaxLength { get; init; }
    public string? Pattern { get; init; }
    public override string Label => "string";
}

internal sealed class ObjectNode(string pointer) : JsonSchemaNode(pointer)
{
    public IReadOnlyDictionary<string, JsonSchemaNode> Properties { get; init; } = new Dictionary<string, JsonSchemaNode>();
    public IReadOnlySet<string> Required { get; init; } = new HashSet<string>();
    public IReadOnlyList<(Regex Pattern, JsonSchemaNode Schema)> PatternProperties { get; init; } = [];

    /// <summary>False when "additionalProperties" is <c>false</c>.</summary>
    public bool PermitsAdditionalProperties { get; init; } = true;

    /// <summary>The schema "additionalProperties" gives when it is an object (not a boolean).</summary>
    public JsonSchemaNode? AdditionalProperties { get; init; }

    public JsonSchemaNode? UnevaluatedProperties { get; init; }
    public JsonNumber? MinProperties { get; init; }
    public JsonNumber? MaxProperties { get; init; }

    /// <summary>"dependencies" with arrays, or "dependentRequired".</summary>
    public IReadOnlyDictionary<string, IReadOnlySet<string>> PropertyDependencies { get; init; } = new Dictionary<string, IReadOnlySet<string>>();

    /// <summary>"dependencies" with schemas, or "dependentSchemas".</summary>
    public IReadOnlyDictionary<string, JsonSchemaNode> SchemaDependencies { get; init; } = new Dictionary<string, JsonSchemaNode>();

    public string PropertyDependenciesKeyword { get; init; } = "dependencies";
    public string SchemaDependenciesKeyword { get; init; } = "dependencies";
    public override string Label => "object";
}

internal sealed class ArrayNode(string pointer) : JsonSchemaNode(pointer)
{
    /// <summary>"items" as one schema for every item.</summary>
    public JsonSchemaNode? AllItems { get; init; }

    /// <summary>A tuple: "items" as an array (up to draft 2019-09) or "prefixItems" (2020-12).</summary>
    public IReadOnlyList<JsonSchemaNode>? ItemSchemas { get; init; }

    /// <summary>False when the items after a tuple's are refused ("additionalItems": false, or
    /// "items": false after "prefixItems").</summary>
    public bool PermitsAdditionalItems { get; init; } = true;

    public JsonSchemaNode? AdditionalItems { get; init; }
    public JsonSchemaNode? UnevaluatedItems { get; init; }
    public JsonNumber? MinItems { get; init; }
    public JsonNumber? MaxItems { get; init; }
    public JsonNumber? MinContains { get; init; }
    public JsonNumber? MaxContains { get; init; }
    public bool UniqueItems { get; init; }

    /// <summary>The keyword of the tuple ("items" or "prefixItems") and of what follows it
    /// ("additionalItems" or "items").</summary>
    public string TupleKeyword { get; init; } = "items";

    public string AdditionalItemsKeyword { get; init; } = "additionalItems";
    public override string Label => "array";
}

internal sealed class EnumNode(string pointer, IReadOnlyList<JsonElement> values) : JsonSchemaNode(pointer)
{
    public IReadOnlyList<JsonElement> Values { get; } = values;
    public override string Label => "enum";
}

internal sealed class ConstNode(string pointer, JsonElement value) : JsonSchemaNode(pointer)
{
    public JsonElement Value { get; } = value;
    public override string Label => "const";
}

internal sealed class NotNode(string pointer, JsonSchemaNode mustNotMatch) : JsonSchemaNode(pointer)
{
    public JsonSchemaNode MustNotMatch { get; } = mustNotMatch;
    public override string Label => "not";
}

internal enum Criterion
{
    AllOf,
    AnyOf,
    OneOf,
}

internal enum CombinedOrigin
{
    /// <summary>Written as "allOf", "anyOf" or "oneOf".</summary>
    Keyword,

    /// <summary>A "type" array: any of the types.</summary>
    TypeArray,

    /// <summary>One schema object that constrains in several ways: all of them.</summary>
    Facets,
}

internal sealed class CombinedNode(string pointer, Criterion criterion, CombinedOrigin origin, IReadOnlyList<JsonSchemaNode> subschemas) : JsonSchemaNode(pointer)
{
    public Criterion Criterion { get; } = criterion;
    public CombinedOrigin Origin { get; } = origin;
    public IReadOnlyList<JsonSchemaNode> Subschemas { get; } = subschemas;

    public string Keyword => Criterion switch
    {
        Criterion.AllOf => "allOf",
        Criterion.AnyOf => "anyOf",
        _ => "oneOf",
    };

    public override string Label => Origin == CombinedOrigin.Keyword ? Keyword : string.Join(", ", Subschemas.Select(s => s.Label));
}

/// <summary>A local "$ref", resolved once the whole document is read.</summary>
internal sealed class RefNode(string pointer, string target) : JsonSchemaNode(pointer)
{
    public string Target { get; } = target;
    public JsonSchemaNode? Referred { get; set; }
    public override string Label => Referred?.Label ?? "$ref";
}
