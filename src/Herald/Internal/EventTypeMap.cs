using System.Globalization;
using System.Text;
using Herald.Internal.Versioning;

namespace Herald.Internal;

/// <summary>An event type mapped to its <c>ce_type</c> name, topic and key selector, and the
/// version of its data with the older versions consumers can read.</summary>
internal abstract class EventMapping(Type clrType, string name, string topic, EventVersions? versions)
{
    public Type ClrType { get; } = clrType;
    public string Name { get; } = name;
    public byte[] NameUtf8 { get; } = Encoding.UTF8.GetBytes(name);
    public string Topic { get; } = topic;

    /// <summary>The current version: written as <c>ce_dataversion</c>, and the one handlers get.</summary>
    public int Version { get; } = versions?.Current ?? 1;

    /// <summary><see cref="Version"/> as the header's bytes: a record at the current version is
    /// recognised by comparing them, without parsing (pipeline benchmark).</summary>
    public byte[] VersionUtf8 { get; } = Encoding.UTF8.GetBytes((versions?.Current ?? 1).ToString(CultureInfo.InvariantCulture));

    /// <summary>The older versions and their upcasters; null for a type registered without them.</summary>
    public EventVersions? Versions { get; } = versions;

    /// <summary>The topic's partition count once the publisher has looked it up (0 before): the
    /// topic table keeps it for good, and a lookup by topic name per publish hashed the name.</summary>
    public int Partitions;
}

internal sealed class EventMapping<T>(string name, string topic, Func<T, string?>? key, EventVersions? versions = null) : EventMapping(typeof(T), name, topic, versions)
{
    public Func<T, string?>? Key { get; } = key;
}

/// <summary>Every mapped event type, by CLR type and by <c>ce_type</c> bytes.</summary>
internal sealed class EventTypeMap
{
    private readonly Dictionary<Type, EventMapping> _byType = [];
    private readonly Dictionary<ReadOnlyMemory<byte>, EventMapping> _byName = new(ByteKeyComparer.Instance);

    public IEnumerable<EventMapping> All => _byType.Values;

    public void Add(EventMapping mapping)
    {
        if (_byType.ContainsKey(mapping.ClrType)) throw new InvalidOperationException($"event type {mapping.ClrType.Name} is mapped twice");
        if (_byName.TryGetValue(mapping.NameUtf8, out var other))
            throw new InvalidOperationException($"event types {other.ClrType.FullName} and {mapping.ClrType.FullName} both use the type name '{mapping.Name}'; give one of them another name");
        _byType[mapping.ClrType] = mapping;
        _byName[mapping.NameUtf8] = mapping;
    }

    public EventMapping<T> Get<T>()
    {
        // Per type, for the map that asked last (usually the only one): a dictionary lookup by type
        // and a cast per publish otherwise (pipeline benchmark).
        if (Cache<T>.Entry is { } cached && ReferenceEquals(cached.Map, this)) return cached.Mapping;
        var mapping = _byType.TryGetValue(typeof(T), out var m) ? (EventMapping<T>)m
            : throw new InvalidOperationException($"event type {typeof(T).FullName} is not mapped to a topic; add h.Event<{typeof(T).Name}>(\"topic\") in AddHerald");
        Cache<T>.Entry = new CacheEntry<T>(this, mapping);
        return mapping;
    }

    private sealed record CacheEntry<T>(EventTypeMap Map, EventMapping<T> Mapping);

    private static class Cache<T>
    {
        public static CacheEntry<T>? Entry;
    }

    public bool TryGet(Type type, out EventMapping mapping) => _byType.TryGetValue(type, out mapping!);

    public bool TryGet(ReadOnlyMemory<byte> name, out EventMapping mapping) => _byName.TryGetValue(name, out mapping!);
}
