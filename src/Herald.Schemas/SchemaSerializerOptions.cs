namespace Herald.Schemas;

/// <summary>What the registry-backed serializers (Avro, JSON Schema) share.</summary>
public abstract class SchemaSerializerOptions
{
    /// <summary>Registers an event type's schema on its first publish (checked at the subject's
    /// compatibility level). Off for production: the schema must then be registered already, and a
    /// publish of an unregistered one fails naming the subject.</summary>
    public bool AutoRegister { get; set; } = true;

    public SubjectNameStrategy SubjectNames { get; set; } = SubjectNameStrategy.TopicName;

    /// <summary>A hand-written schema (an <c>.avsc</c>'s or a JSON Schema file's text) for a type,
    /// instead of the one generated from it.</summary>
    public IDictionary<Type, string> Schemas { get; } = new Dictionary<Type, string>();

    /// <summary>The largest record value written or read.</summary>
    public int MaxSize { get; set; } = Wire.ConfluentWireFormat.DefaultMaxSize;

    /// <summary>How long a registry call may take.</summary>
    public TimeSpan RegistryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Throws naming the first bad setting.</summary>
    public virtual void Validate()
    {
        if (MaxSize < Wire.ConfluentWireFormat.HeaderSize + 1)
            throw new ArgumentOutOfRangeException(nameof(MaxSize), MaxSize, $"{nameof(MaxSize)} must leave room for the wire format's {Wire.ConfluentWireFormat.HeaderSize}-byte header and a payload");
        if (RegistryTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RegistryTimeout), RegistryTimeout, $"{nameof(RegistryTimeout)} must be positive");
        if (!Enum.IsDefined(SubjectNames))
            throw new ArgumentOutOfRangeException(nameof(SubjectNames), SubjectNames, $"{nameof(SubjectNames)} is not a {nameof(SubjectNameStrategy)}");
    }
}
