namespace Herald;

/// <summary>Handles one event type for a subscription. Resolved from a DI scope per event (or per
/// fetched batch, when the subscription says so). Throwing sends the event down the failure path:
/// immediate retries, delayed retries, then the dead-letter topic.</summary>
public interface IEventHandler<in T>
{
    ValueTask HandleAsync(T evt, EventContext context, CancellationToken cancellationToken);
}
