namespace Herald;

/// <summary>Publishes events. <see cref="PublishAsync{T}"/> completes once the event is durable per
/// its topic's policy; a full producer buffer makes the caller wait.</summary>
public interface IEventPublisher
{
    ValueTask PublishAsync<T>(T evt, PublishOptions? options = null, CancellationToken cancellationToken = default);
}

/// <summary>Per-publish settings; everything is optional.</summary>
public sealed class PublishOptions
{
    /// <summary>The partition key; overrides the event mapping's key selector.</summary>
    public string? Key { get; init; }

    /// <summary>The <c>ce_id</c>; a new id when not given.</summary>
    public string? Id { get; init; }

    public string? CorrelationId { get; init; }

    public string? CausationId { get; init; }
}
