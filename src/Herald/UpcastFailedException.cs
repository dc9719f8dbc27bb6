namespace Herald;

/// <summary>An upcaster threw (its exception is <see cref="Exception.InnerException"/>) or returned
/// null. Not poison: the record goes down the subscription's failure path (immediate retries,
/// delayed retries, then the dead letters with this exception recorded), so a fixed upcaster can
/// replay it.</summary>
public sealed class UpcastFailedException : HeraldException
{
    internal UpcastFailedException(string eventName, int fromVersion, Exception? inner)
        : base(inner is null
            ? $"the upcaster of {eventName} from version {fromVersion} to {fromVersion + 1} returned null"
            : $"the upcaster of {eventName} from version {fromVersion} to {fromVersion + 1} threw {inner.GetType().Name}: {inner.Message}", inner)
    {
        EventType = eventName;
        FromVersion = fromVersion;
    }

    /// <summary>The event's <c>ce_type</c>.</summary>
    public string EventType { get; }

    /// <summary>The version the failing step reads; it was to return version <c>FromVersion + 1</c>.</summary>
    public int FromVersion { get; }
}
