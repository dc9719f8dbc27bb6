namespace Herald;

/// <summary>Record header names Herald reads and writes. Event metadata follows the CloudEvents
/// Kafka binding in binary mode (<c>ce_</c> attributes, <c>content-type</c>); Herald's own
/// bookkeeping on retry and dead-letter records uses the <c>herald-</c> prefix.</summary>
public static class HeaderNames
{
    public const string Id = "ce_id";
    public const string Source = "ce_source";
    public const string Type = "ce_type";
    public const string SpecVersion = "ce_specversion";
    public const string Time = "ce_time";
    public const string ContentType = "content-type";
    public const string TraceParent = "traceparent";
    public const string TraceState = "tracestate";

    /// <summary>CloudEvents extension attribute: the id shared by every event of one business flow.</summary>
    public const string CorrelationId = "ce_correlationid";

    /// <summary>CloudEvents extension attribute: the id of the event whose handling published this one.</summary>
    public const string CausationId = "ce_causationid";

    /// <summary>CloudEvents extension attribute: the version of the event type's data that the record
    /// was written at, a decimal integer from 1 (<see cref="EventBuilder{T}.Version"/>). A record
    /// without it is version 1, as every record written before versioning existed is. Consumers
    /// upcast older versions to the current one before the handler sees them (docs/versioning.md).</summary>
    public const string DataVersion = "ce_dataversion";

    public const string Prefix = "herald-";
    public const string OriginalTopic = "herald-original-topic";
    public const string OriginalPartition = "herald-original-partition";
    public const string OriginalOffset = "herald-original-offset";
    public const string Group = "herald-group";
    public const string Attempts = "herald-attempts";
    public const string Round = "herald-retry-round";
    public const string DueMs = "herald-due-ms";
    public const string Replay = "herald-replay";

    /// <summary>On a retry-topic marker record: "done" — the event at herald-original-offset is finished.</summary>
    public const string RetryOp = "herald-retry-op";
    public const string FirstFailureMs = "herald-first-failure-ms";
    public const string LastFailureMs = "herald-last-failure-ms";
    public const string ExceptionType = "herald-exception-type";
    public const string ExceptionMessage = "herald-exception-message";
    public const string ExceptionStack = "herald-exception-stack";
    public const string FailureFrame = "herald-failure-frame";
    public const string DeadLetterReason = "herald-dlq-reason";
    public const string ParkedBehind = "herald-parked-behind";
    public const string DeadLetterOp = "herald-dlq-op";
    public const string Resolves = "herald-dlq-resolves";
    public const string Resolution = "herald-dlq-resolution";
}
