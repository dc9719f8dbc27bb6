using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using Avro;
using Avro.Generic;

namespace Herald.Schemas.Avro;

/// <summary>Between C# objects and Apache.Avro's generic data (records, enums, arrays, maps,
/// unions, logical types), by the same mapping as <see cref="AvroSchemaGenerator"/>: fields are
/// the camelCase names of properties. Objects are made through the constructor with the most
/// parameters (primary constructors, matched by name) and the remaining settable properties.</summary>
internal static class AvroObjectMapper
{
    /// <param name="path">Where <paramref name="value"/> is, for error messages; a reused one
    /// spares a string per field per record.</param>
    public static object? ToAvro(object? value, Schema schema, MapperPath path)
    {
        switch (schema)
        {
            case UnionSchema union:
                if (value is null)
                {
                    if (Branch(union, null) is not null) return null;
                    throw new AvroException($"{path}: null, and the union {union} has no null branch");
                }
                var branch = Branch(union, value) ?? throw new AvroException($"{path}: a value, and the union has only null");
                return ToAvro(value, branch, path);
            case RecordSchema record:
                if (value is null) throw new AvroException($"{path}: null where record {record.Name} is required");
                var generic = new GenericRecord(record);
                var properties = Shape(value.GetType()).Properties;
                foreach (var field in record.Fields)
                {
                    path.Field(field.Name);
                    if (!properties.TryGetValue(field.Name, out var property))
                    {
                        if (field.DefaultValue is null) throw new AvroException($"{path}: {value.GetType()} has no property for this field, and the field has no default");
                        generic.Add(field.Name, DefaultDatum(field, path));
                    }
                    else generic.Add(field.Name, ToAvro(property.GetValue(value), field.Schema, path));
                    path.Pop();
                }
                return generic;
            case EnumSchema enumSchema:
                if (value is null) throw new AvroException($"{path}: null where enum {enumSchema.Name} is required");
                return new GenericEnum(enumSchema, value.ToString()!);
            case ArraySchema array:
                if (value is not IEnumerable items) throw new AvroException($"{path}: {value?.GetType().ToString() ?? "null"} where an array is required");
                if (items is IList list)
                {
                    var converted = new object?[list.Count];
                    for (var i = 0; i < converted.Length; i++)
                    {
                        path.Index(i);
                        converted[i] = ToAvro(list[i], array.ItemSchema, path);
                        path.Pop();
                    }
                    return converted;
                }
                var some = new List<object?>();
                foreach (var item in items)
                {
                    path.Index(some.Count);
                    some.Add(ToAvro(item, array.ItemSchema, path));
                    path.Pop();
                }
                return some.ToArray();
            case MapSchema map:
                if (value is not IDictionary dictionary) throw new AvroException($"{path}: {value?.GetType().ToString() ?? "null"} where a map is required");
                var entries = new Dictionary<string, object?>(dictionary.Count, StringComparer.Ordinal);
                foreach (DictionaryEntry entry in dictionary)
                {
                    path.Key((string)entry.Key);
                    entries[(string)entry.Key] = ToAvro(entry.Value, map.ValueSchema, path);
                    path.Pop();
                }
                return entries;
            case LogicalSchema logical:
                return logical.LogicalTypeName switch
                {
                    "decimal" => value is decimal d ? Decimal(d, logical, path) : value,
                    "timestamp-micros" or "timestamp-millis" => value switch
                    {
                        DateTimeOffset o => o.UtcDateTime,
                        DateTime t => t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime(),
                        _ => value,
                    },
                    "date" => value is DateOnly date ? date.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) : value,
                    "time-micros" or "time-millis" => value is TimeOnly time ? time.ToTimeSpan() : value,
                    _ => value,
                };
            default:
                return value switch
                {
                    short or byte or sbyte or ushort => Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture),
                    char c => (int)c,
                    uint u => (long)u,
                    ReadOnlyMemory<byte> m => m.ToArray(),
                    Memory<byte> m => m.ToArray(),
                    _ => value,
                };
        }
    }

    /// <summary>A decimal at the schema's scale (Apache.Avro writes only that scale); one with more
    /// digits after the point than the scale allows is an error, not rounded.</summary>
    private static AvroDecimal Decimal(decimal value, LogicalSchema schema, MapperPath path)
    {
        var scale = int.TryParse(schema.GetProperty("scale"), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : 0;
        var bits = decimal.GetBits(value);
        var valueScale = (bits[3] >> 16) & 0xff;
        var unscaled = new System.Numerics.BigInteger((uint)bits[0]) | (new System.Numerics.BigInteger((uint)bits[1]) << 32) | (new System.Numerics.BigInteger((uint)bits[2]) << 64);
        if (bits[3] < 0) unscaled = -unscaled;
        if (scale >= valueScale) unscaled *= System.Numerics.BigInteger.Pow(10, scale - valueScale);
        else
        {
            var divisor = System.Numerics.BigInteger.Pow(10, valueScale - scale);
            var quotient = System.Numerics.BigInteger.DivRem(unscaled, divisor, out var remainder);
            if (!remainder.IsZero) throw new AvroException($"{path}: {value} has more than {scale} digits after the point, the schema's scale");
            unscaled = quotient;
        }
        return new AvroDecimal(unscaled, scale);
    }

    /// <summary>The branch a value is written as: for null the null branch, otherwise the first
    /// that fits it, or else the first that is not null; null when there is none.</summary>
    private static Schema? Branch(UnionSchema union, object? value)
    {
        Schema? fallback = null;
        foreach (var branch in union.Schemas)
        {
            if (branch.Tag == Schema.Type.Null)
            {
                if (value is null) return branch;
                continue;
            }
            if (value is null) continue;
            if (Fits(value, branch)) return branch;
            fallback ??= branch;
        }
        return fallback;
    }

    /// <summary>Whether a value belongs to a union's branch (the first that fits is written).</summary>
    private static bool Fits(object value, Schema branch) => (branch is LogicalSchema l ? l.BaseSchema : branch).Tag switch
    {
        Schema.Type.String => value is string or Guid,
        Schema.Type.Int => value is int or short or byte or sbyte or ushort or char or DateOnly,
        Schema.Type.Long => value is long or uint or DateTime or DateTimeOffset or TimeOnly,
        Schema.Type.Float => value is float,
        Schema.Type.Double => value is double,
        Schema.Type.Boolean => value is bool,
        Schema.Type.Bytes => value is byte[] or ReadOnlyMemory<byte> or decimal,
        Schema.Type.Record => branch is RecordSchema r && r.Name == value.GetType().Name,
        Schema.Type.Enumeration => value is Enum && branch is EnumSchema e && e.Name == value.GetType().Name,
        Schema.Type.Array => value is IEnumerable and not string and not IDictionary and not byte[],
        Schema.Type.Map => value is IDictionary,
        _ => false,
    };

    /// <summary>A field's default (from the schema) as generic data, for a field the object lacks.</summary>
    private static object? DefaultDatum(Field field, MapperPath path)
    {
        var token = field.DefaultValue;
        var schema = field.Schema is UnionSchema union ? union.Schemas[0] : field.Schema;
        if (token.Type == Newtonsoft.Json.Linq.JTokenType.Null) return null;
        var plain = (token as Newtonsoft.Json.Linq.JValue)?.Value;
        return (schema is LogicalSchema l ? l.BaseSchema : schema).Tag switch
        {
            Schema.Type.Int => Convert.ToInt32(plain, System.Globalization.CultureInfo.InvariantCulture),
            Schema.Type.Long => Convert.ToInt64(plain, System.Globalization.CultureInfo.InvariantCulture),
            Schema.Type.Float => Convert.ToSingle(plain, System.Globalization.CultureInfo.InvariantCulture),
            Schema.Type.Double => Convert.ToDouble(plain, System.Globalization.CultureInfo.InvariantCulture),
            Schema.Type.Boolean => Convert.ToBoolean(plain, System.Globalization.CultureInfo.InvariantCulture),
            Schema.Type.String => Convert.ToString(plain, System.Globalization.CultureInfo.InvariantCulture),
            Schema.Type.Enumeration => new GenericEnum((EnumSchema)schema, Convert.ToString(plain, System.Globalization.CultureInfo.InvariantCulture)!),
            Schema.Type.Array when token is Newtonsoft.Json.Linq.JArray { Count: 0 } => Array.Empty<object>(),
            Schema.Type.Map when token is Newtonsoft.Json.Linq.JObject { Count: 0 } => new Dictionary<string, object>(),
            _ => throw new AvroException($"{path}: the field's default {token} is not one Herald writes for an object without the field"),
        };
    }

    public static object? FromAvro(object? datum, Type type, MapperPath path)
    {
        if (datum is null)
        {
            if (!type.IsValueType || Nullable.GetUnderlyingType(type) is not null) return null;
            throw new AvroException($"{path}: null for {type}, which cannot be null");
        }
        var target = Nullable.GetUnderlyingType(type) ?? type;
        switch (datum)
        {
            case GenericRecord record:
                return Construct(record, target, path);
            case GenericEnum e:
                return target.IsEnum
                    ? Enum.TryParse(target, e.Value, ignoreCase: false, out var parsed) ? parsed : throw new AvroException($"{path}: '{e.Value}' is not a member of {target}")
                    : e.Value;
            case AvroDecimal d:
                return Convert.ToDecimal(d.ToString(), System.Globalization.CultureInfo.InvariantCulture);
            case DateTime t:
                if (target == typeof(DateTimeOffset)) return new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc));
                if (target == typeof(DateOnly)) return DateOnly.FromDateTime(t);
                return t;
            case TimeSpan span when target == typeof(TimeOnly):
                return TimeOnly.FromTimeSpan(span);
            case IDictionary dictionary when target != typeof(string):
                var (valueType, mapType) = MapOf(target);
                var map = (IDictionary)Activator.CreateInstance(mapType)!;
                foreach (DictionaryEntry entry in dictionary)
                {
                    path.Key((string)entry.Key);
                    map[(string)entry.Key] = FromAvro(entry.Value, valueType, path);
                    path.Pop();
                }
                return map;
            case IEnumerable items when datum is not string and not byte[]:
                var shape = ListOf(target);
                var list = (IList)Activator.CreateInstance(shape.List)!;
                var i = 0;
                foreach (var item in items)
                {
                    path.Index(i++);
                    list.Add(FromAvro(item, shape.Element, path));
                    path.Pop();
                }
                if (target.IsArray)
                {
                    var array = Array.CreateInstance(shape.Element, list.Count);
                    list.CopyTo(array, 0);
                    return array;
                }
                if (shape.Set is { } set) return Activator.CreateInstance(set, list);
                return list;
            case byte[] bytes when target == typeof(ReadOnlyMemory<byte>):
                return new ReadOnlyMemory<byte>(bytes);
            case byte[] bytes when target == typeof(string):
                return System.Text.Encoding.UTF8.GetString(bytes);
            case string s when target == typeof(byte[]):
                return System.Text.Encoding.UTF8.GetBytes(s);
            case string s when target == typeof(Guid):
                return Guid.Parse(s);
            default:
                return target == datum.GetType() || target == typeof(object) ? datum : Convert.ChangeType(datum, target, System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private static object Construct(GenericRecord record, Type type, MapperPath path)
    {
        var shape = Shape(type);
        if (shape.Constructor is not { } constructor) throw new AvroException($"{path}: {type} has no public constructor");
        var parameters = shape.Parameters;
        var arguments = new object?[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            var name = shape.ParameterFields[i];
            if (record.TryGetValue(name, out var value))
            {
                path.Field(name);
                arguments[i] = FromAvro(value, parameters[i].ParameterType, path);
                path.Pop();
            }
            else if (parameters[i].HasDefaultValue) arguments[i] = parameters[i].DefaultValue;
            else arguments[i] = parameters[i].ParameterType.IsValueType ? Activator.CreateInstance(parameters[i].ParameterType) : null;
        }
        var instance = constructor.Invoke(arguments);
        foreach (var field in record.Schema.Fields)
        {
            // A field of the record named by a parameter was passed to the constructor above.
            if (shape.ParameterFieldSet.Contains(field.Name) || !shape.Properties.TryGetValue(field.Name, out var property) || property.SetMethod is null) continue;
            if (record.TryGetValue(field.Name, out var value))
            {
                path.Field(field.Name);
                property.SetValue(instance, FromAvro(value, property.PropertyType, path));
                path.Pop();
            }
        }
        return instance;
    }

    /// <summary>What the mapper needs of a class, found once per type (bench serde: per record,
    /// the parameters' field names and the set of those taken cost more than the decoding).</summary>
    private sealed record TypeShape(
        Dictionary<string, PropertyInfo> Properties,
        ConstructorInfo? Constructor,
        ParameterInfo[] Parameters,
        string[] ParameterFields,
        HashSet<string> ParameterFieldSet);

    /// <summary>The concrete types an array is read into for a target type, found once per type.</summary>
    private sealed record ListShape(Type Element, Type List, Type? Set);

    private static readonly ConcurrentDictionary<Type, TypeShape> Shapes = new();

    private static readonly ConcurrentDictionary<Type, ListShape> Lists = new();

    private static readonly ConcurrentDictionary<Type, (Type Value, Type Map)> Maps = new();

    /// <summary>Per type: the readable properties by field name, and the constructor objects are
    /// made with (the most parameters) with its parameters' field names.</summary>
    private static TypeShape Shape(Type type) => Shapes.GetOrAdd(type, static t =>
    {
        var properties = t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanRead && p.GetIndexParameters().Length == 0)
            .ToDictionary(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name), StringComparer.Ordinal);
        var constructor = t.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault();
        var parameters = constructor?.GetParameters() ?? [];
        var fields = parameters.Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name!)).ToArray();
        return new TypeShape(properties, constructor, parameters, fields, new HashSet<string>(fields, StringComparer.Ordinal));
    });

    private static ListShape ListOf(Type target) => Lists.GetOrAdd(target, static t =>
    {
        var element = t.IsArray ? t.GetElementType()! : t.IsGenericType ? t.GetGenericArguments()[0] : typeof(object);
        var definition = t.IsGenericType ? t.GetGenericTypeDefinition() : null;
        var set = definition is not null && (definition == typeof(HashSet<>) || definition == typeof(ISet<>) || definition == typeof(IReadOnlySet<>))
            ? typeof(HashSet<>).MakeGenericType(element)
            : null;
        return new ListShape(element, typeof(List<>).MakeGenericType(element), set);
    });

    private static (Type Value, Type Map) MapOf(Type target) => Maps.GetOrAdd(target, static t =>
    {
        var value = t.IsGenericType ? t.GetGenericArguments()[^1] : typeof(object);
        return (value, typeof(Dictionary<,>).MakeGenericType(typeof(string), value));
    });
}
