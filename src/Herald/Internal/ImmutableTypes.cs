using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Reflection;

namespace Herald.Internal;

/// <summary>Decides, once per type and by reflection over its fields, whether an instance can
/// never change after construction: every instance field, its base classes' included, is
/// <c>readonly</c> (init-only properties and positional records compile to such fields) and of a
/// type that is itself deeply immutable. Conservative by design: a type is immutable only when
/// every part of it is known to be (scalars, strings, enums, <see cref="Nullable{T}"/>,
/// <see cref="ImmutableArray{T}"/> and such types built of them); interfaces, <c>object</c>,
/// arrays and mutable collections never are.</summary>
internal static class ImmutableTypes
{
    private static readonly ConcurrentDictionary<Type, bool> Known = new();

    private static readonly HashSet<Type> Scalars =
    [
        typeof(string), typeof(decimal), typeof(Guid), typeof(DateTime), typeof(DateTimeOffset), typeof(TimeSpan),
        typeof(DateOnly), typeof(TimeOnly), typeof(Half), typeof(Int128), typeof(UInt128),
    ];

    /// <summary>Whether an instance of exactly <paramref name="type"/> is deeply immutable (an
    /// instance of a subclass may add fields of its own; callers check the runtime type).</summary>
    public static bool IsDeeplyImmutable(Type type) => Known.GetOrAdd(type, static t => Check(t, [], topLevel: true));

    private static bool Check(Type type, HashSet<Type> visiting, bool topLevel = false)
    {
        if (type.IsPrimitive || type.IsEnum || Scalars.Contains(type)) return true;
        if (Nullable.GetUnderlyingType(type) is { } underlying) return Check(underlying, visiting);
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ImmutableArray<>))
            return Check(type.GetGenericArguments()[0], visiting);
        if (type.IsInterface || type.IsAbstract || type.IsArray || type.IsPointer || type.IsByRef || type == typeof(object)
            || type.ContainsGenericParameters || typeof(Delegate).IsAssignableFrom(type))
            return false;
        // Other framework types are not vetted one by one: their private fields are theirs to change.
        if (type.Namespace is { } ns && (ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal) || ns.StartsWith("Microsoft.", StringComparison.Ordinal)))
            return false;
        // A field of an unsealed class type may hold a subclass with fields of its own.
        if (!topLevel && !type.IsValueType && !type.IsSealed) return false;
        if (!visiting.Add(type)) return true; // a cycle: decided by the rest of the type's fields
        try
        {
            for (var t = type; t is not null && t != typeof(object) && t != typeof(ValueType); t = t.BaseType)
            {
                foreach (var field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (!field.IsInitOnly || !Check(field.FieldType, visiting)) return false;
                }
            }
            return true;
        }
        finally
        {
            visiting.Remove(type);
        }
    }
}
