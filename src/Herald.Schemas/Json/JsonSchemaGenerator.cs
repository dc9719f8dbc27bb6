using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Herald.Schemas.Json;

/// <summary>
/// JSON Schemas of C# types, as System.Text.Json writes and reads them with the given options
/// (System.Text.Json's exporter does the mapping, so property names, enums as strings or numbers,
/// and nullability follow the serializer's own settings). On top of the exporter's schema:
/// <list type="bullet">
/// <item>object schemas of types are closed (<c>"additionalProperties": false</c>), as Confluent's
/// serializers generate them: under a closed content model an added optional property is a
/// backward-compatible change, under an open one it is not;</item>
/// <item>the root has a <c>title</c>, the type's name, which the record-name subject strategies use;</item>
/// <item>it names the draft it follows (2020-12).</item>
/// </list>
/// </summary>
public static class JsonSchemaGenerator
{
    public const string Draft = "https://json-schema.org/draft/2020-12/schema";

    /// <summary>The options Herald's JSON Schema serializer uses by default: web names (camelCase),
    /// numbers only as numbers, nullable annotations respected and constructor parameters without
    /// defaults required, so the schema says what the serializer accepts.</summary>
    public static JsonSerializerOptions DefaultOptions() => new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.Strict,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    /// <summary>The schema of <paramref name="type"/> as JSON text.</summary>
    public static string For(Type type, JsonSerializerOptions? options = null) => Node(type, options).ToJsonString();

    /// <summary>The schema of <paramref name="type"/>.</summary>
    public static JsonObject Node(Type type, JsonSerializerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        options ??= DefaultOptions();
        options.TypeInfoResolver ??= new DefaultJsonTypeInfoResolver();
        var exported = JsonSchemaExporter.GetJsonSchemaAsNode(options, type, new JsonSchemaExporterOptions
        {
            TreatNullObliviousAsNonNullable = true,
            TransformSchemaNode = (context, node) =>
            {
                // A type's properties (not a dictionary, whose values are additionalProperties)
                // make a closed object.
                if (node is JsonObject o && context.TypeInfo.Kind == JsonTypeInfoKind.Object && o.ContainsKey("properties") && !o.ContainsKey("additionalProperties"))
                    o["additionalProperties"] = false;
                return node;
            },
        });
        var root = exported as JsonObject ?? throw new InvalidOperationException($"the JSON Schema of {type.Name} is not an object schema: {exported.ToJsonString()}");
        var schema = new JsonObject { ["$schema"] = Draft, ["title"] = type.Name };
        foreach (var (name, value) in root.ToList())
        {
            root.Remove(name);
            if (name is "$schema" or "title") continue;
            schema[name] = value;
        }
        return schema;
    }
}
