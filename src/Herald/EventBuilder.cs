using Herald.Internal;
using Herald.Internal.Versioning;

namespace Herald;

/// <summary>Configures one mapped event type (<see cref="HeraldBuilder.Event{T}"/>): the version of
/// its data, and the upcasters that bring records written at older versions up to it.</summary>
/// <remarks>
/// <para>Every record carries the version it was written at in the <c>ce_dataversion</c> header
/// (<see cref="HeaderNames.DataVersion"/>); a record without it is version 1. Publishers and the
/// outbox write <see cref="Version(int)"/>. A consumer reads a record of an older version as the type
/// registered for that version, runs the upcasters from there to the current version, and only then
/// checks the inbox and calls the handler: handlers see only <typeparamref name="T"/>.</para>
/// <para>The chain is checked and composed when the host starts; a gap, a duplicate version, a step
/// whose result is not the next version's type, or a version below 1 fails the start with the event
/// type and the version named. An upcaster that throws sends the record down the failure path
/// (retries, then the dead letters, with <see cref="UpcastFailedException"/> recorded); a record of a
/// version newer than <see cref="Version(int)"/>, or older than the oldest upcaster, is dead-lettered
/// at once as poison (<see cref="UnknownEventVersionException"/>). See docs/versioning.md.</para>
/// </remarks>
/// <example><code>
/// h.Event&lt;OrderPlaced&gt;("orders", e => e.OrderId.ToString())
///     .Version(3)
///     .Upcast(1, (OrderPlacedV1 v1) => new OrderPlacedV2(v1.OrderId, v1.Amount, "USD"))
///     .Upcast(2, (OrderPlacedV2 v2) => new OrderPlaced(v2.OrderId, new Money(v2.Amount, v2.Currency)));
/// </code></example>
public sealed class EventBuilder<T>
{
    private readonly string _name;
    private readonly List<UpcastStep<T>> _steps = [];
    private int? _version;

    internal EventBuilder(string name) => _name = name;

    /// <summary>The current version of <typeparamref name="T"/>'s data (1 unless set): what this
    /// service writes in <c>ce_dataversion</c>, and the version handlers receive. Raise it when the
    /// type changes in a way the serializer's schema rules cannot bridge, and register an upcaster
    /// from the version before.</summary>
    public EventBuilder<T> Version(int current)
    {
        _version = current;
        return this;
    }

    /// <summary>Registers the upcaster from <paramref name="fromVersion"/>, whose records are
    /// deserialized as <typeparamref name="TOld"/>, to version <c>fromVersion + 1</c>, whose type
    /// <typeparamref name="TNext"/> must be the type the next step takes (or <typeparamref name="T"/>
    /// when that is the current version). A pure function of the old event: it runs on every consumer,
    /// and again when a record is retried or replayed.</summary>
    public EventBuilder<T> Upcast<TOld, TNext>(int fromVersion, Func<TOld, TNext> upcast)
    {
        ArgumentNullException.ThrowIfNull(upcast);
        _steps.Add(new UpcastStep<T, TOld, TNext>(fromVersion, upcast));
        return this;
    }

    /// <summary>The mapping, its chain validated and composed (at start).</summary>
    internal EventMapping<T> Build(string topic, Func<T, string?>? key)
    {
        var versions = _version is null && _steps.Count == 0 ? null : EventVersions.Compose(_name, _version ?? 1, _steps);
        return new EventMapping<T>(_name, topic, key, versions);
    }
}
