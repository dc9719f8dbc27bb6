namespace Herald.Internal.Versioning;

/// <summary>The older versions of one event type that a consumer can read: for each, the type its
/// records are deserialized as and the composed upcasters that bring it to the current version.
/// Validated and composed once at start.</summary>
internal sealed class EventVersions
{
    private readonly VersionReader[] _readers; // by version - Oldest

    private EventVersions(int current, int oldest, VersionReader[] readers)
    {
        Current = current;
        Oldest = oldest;
        _readers = readers;
    }

    /// <summary>The version the application's type is at: what publishers write, what handlers get.</summary>
    public int Current { get; }

    /// <summary>The oldest version an upcaster reads (<see cref="Current"/> when there is none).</summary>
    public int Oldest { get; }

    /// <summary>The reader of an older <paramref name="version"/>, or null when none is registered.</summary>
    public VersionReader? Reader(int version) =>
        version >= Oldest && version < Current ? _readers[version - Oldest] : null;

    /// <summary>The reader of a record of <paramref name="mapping"/>'s type whose <c>ce_dataversion</c>
    /// (<paramref name="header"/>, absent for version 1) is not the current version's bytes: null
    /// with <paramref name="unknown"/> null when it is the current version after all (say "03" for
    /// 3); null with <paramref name="unknown"/> set when this consumer cannot read it (not a number,
    /// newer than the current version, or older than the oldest upcaster). <paramref name="where"/>
    /// names the record in the error.</summary>
    public static VersionReader? ReaderOf(EventMapping mapping, ReadOnlyMemory<byte>? header, string where, out UnknownEventVersionException? unknown)
    {
        unknown = null;
        var version = 1;
        if (header is { } h && (!System.Buffers.Text.Utf8Parser.TryParse(h.Span, out version, out var used) || used != h.Length || version < 1))
        {
            unknown = new UnknownEventVersionException($"{mapping.Name} at {where} has {HeaderNames.DataVersion} '{System.Text.Encoding.UTF8.GetString(h.Span)}', which is not a version (1, 2, 3, …)");
            return null;
        }
        if (version == mapping.Version) return null;
        if (version > mapping.Version)
        {
            unknown = new UnknownEventVersionException($"{mapping.Name} at {where} is version {version}, newer than version {mapping.Version}, the newest this consumer knows: upgrade the consumer (register version {version}) and replay it");
            return null;
        }
        if (mapping.Versions?.Reader(version) is { } reader) return reader;
        unknown = new UnknownEventVersionException(mapping.Versions is { Oldest: var oldest } && oldest < mapping.Version
            ? $"{mapping.Name} at {where} is version {version}, and no type is registered for it: the oldest upcaster of {mapping.Name} reads version {oldest}"
            : $"{mapping.Name} at {where} is version {version}, and no type is registered for it: {mapping.Name} has no upcasters to its current version {mapping.Version}");
        return null;
    }

    /// <summary>Checks the chain of <paramref name="eventType"/> and composes it: every step from
    /// version 1 or more, each from a distinct version older than <paramref name="current"/>, no
    /// version missing between the oldest step and the current version, and each step returning the
    /// type the next version is read as (the next step's input, or <typeparamref name="T"/> for the
    /// current version). The exception names the event type and the version at fault.</summary>
    public static EventVersions Compose<T>(string eventName, int current, IReadOnlyList<UpcastStep<T>> steps)
    {
        var what = $"event type {typeof(T).Name} ('{eventName}')";
        if (current < 1) throw new ArgumentException($"{what}: Version({current}) is not a version; versions are 1, 2, 3, …", nameof(current));
        var byVersion = new SortedDictionary<int, UpcastStep<T>>();
        foreach (var step in steps)
        {
            if (step.From < 1) throw new ArgumentException($"{what}: an upcaster from version {step.From}; versions are 1, 2, 3, …", nameof(steps));
            if (step.From >= current)
                throw new ArgumentException($"{what}: an upcaster from version {step.From} needs a current version above it, and the current version is {current}; set .Version({step.From + 1}) or more", nameof(steps));
            if (!byVersion.TryAdd(step.From, step))
                throw new ArgumentException($"{what}: two upcasters from version {step.From} (to {byVersion[step.From].ToType.Name} and to {step.ToType.Name}); register one per version", nameof(steps));
        }
        var oldest = byVersion.Count == 0 ? current : byVersion.Keys.First();
        for (var v = oldest; v < current; v++)
        {
            if (!byVersion.TryGetValue(v, out var step))
                throw new ArgumentException($"{what}: no upcaster from version {v}, so version {oldest} cannot reach the current version {current}; the chain must have a step from every version from its oldest ({oldest}) up to {current - 1}", nameof(steps));
            var nextType = v + 1 == current ? typeof(T) : byVersion.TryGetValue(v + 1, out var next) ? next.FromType : null;
            if (nextType is not null && step.ToType != nextType)
                throw new ArgumentException($"{what}: the upcaster from version {v} returns {step.ToType.Name}, but version {v + 1} is {nextType.Name} ({(v + 1 == current ? "the current type" : "what its upcaster takes")})", nameof(steps));
        }
        // From the newest down: each step is composed onto the reader of the version after it.
        var readers = new VersionReader[current - oldest];
        VersionReader reader = new VersionReader<T, T>(current, static e => e);
        for (var v = current - 1; v >= oldest; v--)
            reader = readers[v - oldest] = byVersion[v].ComposeOnto(reader, current, eventName);
        return new EventVersions(current, oldest, readers);
    }
}
