using System.Collections;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Herald.Schemas.Avro;

/// <summary>The precision and scale of a <see cref="decimal"/> property's Avro decimal
/// (29 digits, 10 after the point, when not given).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter)]
public sealed class AvroDecimalAttribute(int precision, int scale) : Attribute
{
    public int Precision { get; } = precision;
    public int Scale { get; } = scale;
}

/// <summary>
/// An Avro schema from a C# type, for events that have no hand-written <c>.avsc</c>:
/// <list type="bullet">
/// <item>classes and records become records (the type's name and namespace), their public
/// readable instance properties fields in declaration order, named in camelCase as Herald's JSON
/// is;</item>
/// <item>enums become enums (their member names as symbols, a <see cref="DefaultValueAttribute"/>
/// on the enum type as the default symbol);</item>
/// <item>nullable value types and nullable reference types (by the compiler's annotations) become
/// unions with null;</item>
/// <item>arrays and lists become arrays, dictionaries with string keys maps;</item>
/// <item><see cref="decimal"/> is bytes with logical type decimal (<see cref="AvroDecimalAttribute"/>),
/// <see cref="Guid"/> string/uuid, <see cref="DateTime"/> and <see cref="DateTimeOffset"/>
/// long/timestamp-micros, <see cref="DateOnly"/> int/date, <see cref="TimeOnly"/> long/time-micros;</item>
/// <item>defaults come from property initializers (the value a new instance has), the default
/// values of a primary constructor's parameters, or <see cref="DefaultValueAttribute"/>; a
/// nullable field without one defaults to null.</item>
/// </list>
/// A type met again inside itself is referred to by name (recursive types). A property of a type
/// Avro has no mapping for is an error naming the property.
/// </summary>
public static class AvroSchemaGenerator
{
    public static string For<T>() => For(typeof(T));

    public static string For(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var node = new Generation().Schema(type, type.Name, nullable: false);
        return node.ToJsonString();
    }

    private sealed class Generation
    {
        private readonly HashSet<Type> _defined = [];
        private readonly NullabilityInfoContext _nullability = new();

        public JsonNode Schema(Type type, string path, bool nullable)
        {
            var underlying = Nullable.GetUnderlyingType(type);
            if (underlying is not null) return Union(Schema(underlying, path, nullable: false));
            var schema = NonNull(type, path);
            return nullable ? Union(schema) : schema;
        }

        private static JsonArray Union(JsonNode schema) => new(JsonValue.Create("null"), schema);

        private JsonNode NonNull(Type type, string path)
        {
            if (type == typeof(string)) return "string";
            if (type == typeof(bool)) return "boolean";
            if (type == typeof(int) || type == typeof(short) || type == typeof(byte) || type == typeof(sbyte) || type == typeof(ushort) || type == typeof(char)) return "int";
            if (type == typeof(long) || type == typeof(uint)) return "long";
            if (type == typeof(float)) return "float";
            if (type == typeof(double)) return "double";
            if (type == typeof(byte[]) || type == typeof(ReadOnlyMemory<byte>) || type == typeof(Memory<byte>)) return "bytes";
            if (type == typeof(Guid)) return Logical("string", "uuid");
            if (type == typeof(DateTime) || type == typeof(DateTimeOffset)) return Logical("long", "timestamp-micros");
            if (type == typeof(DateOnly)) return Logical("int", "date");
            if (type == typeof(TimeOnly)) return Logical("long", "time-micros");
            if (type == typeof(decimal)) return Decimal(29, 10);
            if (type.IsEnum) return Enum(type);
            if (ElementOf(type) is { } element) return new JsonObject { ["type"] = "array", ["items"] = Schema(element.Type, path + "[]", element.Nullable) };
            if (ValueOf(type) is { } value) return new JsonObject { ["type"] = "map", ["values"] = Schema(value, path + "{}", nullable: false) };
            if (type.IsPrimitive || type == typeof(object) || type.IsInterface || type.IsAbstract || typeof(Delegate).IsAssignableFrom(type) || type.IsGenericType || type.IsPointer)
                throw new NotSupportedException($"{path}: Avro has no mapping for {type}");
            return Record(type);
        }

        private static JsonObject Logical(string type, string logicalType) => new() { ["type"] = type, ["logicalType"] = logicalType };

        private static JsonObject Decimal(int precision, int scale) => new() { ["type"] = "bytes", ["logicalType"] = "decimal", ["precision"] = precision, ["scale"] = scale };

        private JsonNode Enum(Type type)
        {
            var name = FullName(type);
            if (!_defined.Add(type)) return name;
            var schema = new JsonObject
            {
                ["type"] = "enum",
                ["name"] = type.Name,
                ["symbols"] = new JsonArray(System.Enum.GetNames(type).Select(n => (JsonNode)n).ToArray()),
            };
            if (type.Namespace is { } ns) schema["namespace"] = ns;
            if (type.GetCustomAttribute<DefaultValueAttribute>()?.Value is { } fallback) schema["default"] = System.Enum.GetName(type, fallback) ?? fallback.ToString();
            return schema;
        }

        private JsonNode Record(Type type)
        {
            var name = FullName(type);
            if (!_defined.Add(type)) return name; // defined already (or being defined: recursion)
            var defaults = DefaultsOf(type);
            var fields = new JsonArray();
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanRead && p.GetIndexParameters().Length == 0).OrderBy(p => p.MetadataToken))
            {
                var fieldName = JsonNamingPolicy.CamelCase.ConvertName(property.Name);
                var path = type.Name + "." + fieldName;
                var nullable = !property.PropertyType.IsValueType && _nullability.Create(property).ReadState == NullabilityState.Nullable
                    || Nullable.GetUnderlyingType(property.PropertyType) is not null;
                var decimalAttribute = property.GetCustomAttribute<AvroDecimalAttribute>() ?? ParameterFor(type, property)?.GetCustomAttribute<AvroDecimalAttribute>();
                JsonNode schema = decimalAttribute is not null && (Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType) == typeof(decimal)
                    ? Decimal(decimalAttribute.Precision, decimalAttribute.Scale)
                    : Schema(Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType, path, nullable: false);
                var field = new JsonObject { ["name"] = fieldName };
                var (hasDefault, value) = DefaultFor(type, property, defaults);
                if (nullable)
                {
                    // Avro: a union's default is of its first branch.
                    if (!hasDefault || value is null)
                    {
                        field["type"] = Union(schema);
                        field["default"] = null;
                    }
                    else
                    {
                        field["type"] = new JsonArray(schema, JsonValue.Create("null"));
                        field["default"] = DefaultJson(value, path);
                    }
                }
                else
                {
                    field["type"] = schema;
                    if (hasDefault && value is not null) field["default"] = DefaultJson(value, path);
                }
                fields.Add(field);
            }
            var record = new JsonObject { ["type"] = "record", ["name"] = type.Name };
            if (type.Namespace is { } ns) record["namespace"] = ns;
            record["fields"] = fields;
            return record;
        }

        /// <summary>The values a new instance has, when the type can be made without arguments.</summary>
        private static object? DefaultsOf(Type type)
        {
            if (type.GetConstructor(Type.EmptyTypes) is null) return null;
            try
            {
                return Activator.CreateInstance(type);
            }
            catch (TargetInvocationException)
            {
                return null;
            }
        }

        private static ParameterInfo? ParameterFor(Type type, PropertyInfo property) =>
            type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault()?.GetParameters()
                .FirstOrDefault(p => string.Equals(p.Name, property.Name, StringComparison.OrdinalIgnoreCase) && p.ParameterType == property.PropertyType);

        private static (bool Has, object? Value) DefaultFor(Type type, PropertyInfo property, object? instance)
        {
            if (property.GetCustomAttribute<DefaultValueAttribute>() is { } attribute) return (true, attribute.Value);
            if (ParameterFor(type, property) is { HasDefaultValue: true } parameter) return (true, parameter.DefaultValue);
            if (instance is null) return (false, null);
            var value = property.GetValue(instance);
            // A value type's zero and a reference type's null are what "no initializer" leaves.
            if (value is null) return (false, null);
            if (property.PropertyType.IsValueType && value.Equals(Activator.CreateInstance(property.PropertyType))) return (false, null);
            return (true, value);
        }

        /// <summary>A default as Avro's JSON encoding of it.</summary>
        private static JsonNode? DefaultJson(object value, string path) => value switch
        {
            string s => s,
            bool b => b,
            int or short or byte or sbyte or ushort => Convert.ToInt32(value, CultureInfo.InvariantCulture),
            char c => (int)c,
            long or uint => Convert.ToInt64(value, CultureInfo.InvariantCulture),
            float f => f,
            double d => d,
            Enum e => e.ToString(),
            Guid g => g.ToString(),
            IEnumerable and not string when value is IDictionary dictionary && dictionary.Count == 0 => new JsonObject(),
            IEnumerable items when !items.Cast<object>().Any() => new JsonArray(),
            _ => throw new NotSupportedException($"{path}: a default of {value.GetType()} ({value}) has no Avro JSON form here; give the field no default or a simpler one"),
        };

        private static (Type Type, bool Nullable)? ElementOf(Type type)
        {
            if (type == typeof(string)) return null;
            if (type.IsArray) return (type.GetElementType()!, false);
            if (!type.IsGenericType) return null;
            var definition = type.GetGenericTypeDefinition();
            if (definition == typeof(List<>) || definition == typeof(IList<>) || definition == typeof(IReadOnlyList<>) || definition == typeof(IEnumerable<>)
                || definition == typeof(ICollection<>) || definition == typeof(IReadOnlyCollection<>) || definition == typeof(HashSet<>) || definition == typeof(ISet<>) || definition == typeof(IReadOnlySet<>))
            {
                return (type.GetGenericArguments()[0], false); // a Nullable<T> element becomes a union by itself
            }
            return null;
        }

        private static Type? ValueOf(Type type)
        {
            if (!type.IsGenericType) return null;
            var definition = type.GetGenericTypeDefinition();
            if (definition != typeof(Dictionary<,>) && definition != typeof(IDictionary<,>) && definition != typeof(IReadOnlyDictionary<,>)) return null;
            var arguments = type.GetGenericArguments();
            if (arguments[0] != typeof(string)) throw new NotSupportedException($"{type}: Avro maps have string keys");
            return arguments[1];
        }

        private static string FullName(Type type) => type.Namespace is { } ns ? ns + "." + type.Name : type.Name;
    }
}
