namespace Herald.Subscriptions;

/// <summary>What happens to a key once one of its events is dead-lettered.</summary>
public enum DeadLetterMode
{
    /// <summary>Sequenced dead letters: later events of the key follow the failed one into the
    /// dead-letter topic, in order, until it is replayed or discarded. Other keys go on. The
    /// only mode that never applies a key's events out of order; the default.</summary>
    Park,

    /// <summary>The failed event goes to the dead-letter topic and its key goes on.</summary>
    Skip,
}

/// <summary>How handler instances are scoped.</summary>
public enum HandlerScope
{
    /// <summary>A DI scope per event.</summary>
    PerEvent,

    /// <summary>One DI scope per fetched batch, shared by its events (handlers run concurrently
    /// across keys, so scoped services must be safe for that).</summary>
    PerBatch,
}
