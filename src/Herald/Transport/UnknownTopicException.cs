namespace Herald.Transport;

/// <summary>A topic was used before it was created.</summary>
public sealed class UnknownTopicException(string topic)
    : HeraldException($"topic '{topic}' does not exist; register it with h.Topic(...) or an event mapping")
{
    public string Topic { get; } = topic;
}
