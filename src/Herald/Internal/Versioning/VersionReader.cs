using Herald.Serialization;

namespace Herald.Internal.Versioning;

/// <summary>Reads a record written at one older version of an event type, as the type registered
/// for that version, and brings it to the current version through the composed chain of upcasters.
/// Made once at start (<see cref="EventVersions.Compose{T}"/>): per record it is one serializer call
/// and one delegate call, no reflection.</summary>
internal abstract class VersionReader(int version, Type clrType)
{
    /// <summary>The version this reader reads.</summary>
    public int Version { get; } = version;

    /// <summary>The type records of <see cref="Version"/> are deserialized as.</summary>
    public Type ClrType { get; } = clrType;

    /// <summary>The record's value as <see cref="ClrType"/>, through the serializer (which may resolve
    /// the writer's schema against that type, as the Avro serializer does).</summary>
    public abstract object Deserialize(IEventSerializer serializer, ReadOnlySpan<byte> data);

    /// <summary>The event of <see cref="Version"/> brought to the current version's type; an
    /// upcaster's failure is an <see cref="UpcastFailedException"/> naming its step.</summary>
    public abstract object Upcast(object old);
}

internal sealed class VersionReader<TOld, T>(int version, Func<TOld, T> toCurrent) : VersionReader(version, typeof(TOld))
{
    /// <summary>Every step from <see cref="VersionReader.Version"/> to the current version, composed.</summary>
    public Func<TOld, T> ToCurrent { get; } = toCurrent;

    public override object Deserialize(IEventSerializer serializer, ReadOnlySpan<byte> data) => serializer.Deserialize<TOld>(data)!;

    public override object Upcast(object old) => ToCurrent((TOld)old)!;
}
