using System.Buffers;

namespace Herald.Serialization;

/// <summary>Turns events into record values and back. Failures to decode throw; the consumer
/// sends such a record down the failure path with the reason recorded.</summary>
public interface IEventSerializer
{
    /// <summary>The <c>content-type</c> header written with each event, such as "application/json".</summary>
    string ContentType { get; }

    void Serialize<T>(T value, IBufferWriter<byte> output);

    T Deserialize<T>(ReadOnlySpan<byte> data);
}

/// <summary>A serializer that needs the topic an event is published to, such as one that names
/// schema-registry subjects after topics; the publisher calls this overload instead.</summary>
public interface ITopicEventSerializer : IEventSerializer
{
    void Serialize<T>(T value, string topic, IBufferWriter<byte> output);
}
