using Microsoft.Extensions.Logging;

namespace Herald.Internal;

internal static partial class LogMessages
{
    [LoggerMessage(1, LogLevel.Debug, "Handler of {EventType} in group {Group} failed on {Topic}/{Partition} offset {Offset}, attempt {Attempt}")]
    public static partial void HandlerFailed(ILogger logger, Exception error, string group, string eventType, string topic, int partition, long offset, int attempt);

    [LoggerMessage(2, LogLevel.Information, "Group {Group}: {Topic}/{Partition} offset {Offset} goes to delayed retry round {Round}, due {Due:o}")]
    public static partial void RetryScheduled(ILogger logger, string group, string topic, int partition, long offset, int round, DateTimeOffset due);

    [LoggerMessage(3, LogLevel.Warning, "Group {Group}: {Topic}/{Partition} offset {Offset} dead-lettered ({Reason}) after {Attempts} attempts")]
    public static partial void DeadLettered(ILogger logger, Exception? error, string group, string topic, int partition, long offset, string reason, int attempts);

    [LoggerMessage(4, LogLevel.Error, "Group {Group}: fetching failed; retrying in {Delay}")]
    public static partial void FetchFailed(ILogger logger, Exception error, string group, TimeSpan delay);

    [LoggerMessage(5, LogLevel.Error, "Group {Group}: committing offsets failed; the next commit retries")]
    public static partial void CommitFailed(ILogger logger, Exception error, string group);

    [LoggerMessage(6, LogLevel.Critical, "Group {Group}: the dispatcher failed")]
    public static partial void DispatcherFailed(ILogger logger, Exception error, string group);

    [LoggerMessage(7, LogLevel.Error, "Group {Group}: {Topic}/{Partition} offset {Offset} could not be finished and stays uncommitted; its key is held until a restart")]
    public static partial void RecordStalled(ILogger logger, Exception error, string group, string topic, int partition, long offset);

    [LoggerMessage(8, LogLevel.Warning, "Group {Group}: writing to {Topic}/{Partition} failed (attempt {Attempt}); retrying in {Delay}")]
    public static partial void ProduceRetry(ILogger logger, Exception error, string group, string topic, int partition, int attempt, TimeSpan delay);

    [LoggerMessage(9, LogLevel.Warning, "Group {Group}: handlers still running after {Timeout}; cancelling them")]
    public static partial void DrainTimedOut(ILogger logger, string group, TimeSpan timeout);

    [LoggerMessage(11, LogLevel.Error, "Group {Group}: disposing a handler's DI scope failed; the event's outcome stands")]
    public static partial void ScopeDisposeFailed(ILogger logger, Exception error, string group);

    [LoggerMessage(10, LogLevel.Information, "Herald started: transport {Transport}, {Subscriptions} subscriptions")]
    public static partial void Started(ILogger logger, string transport, int subscriptions);

    [LoggerMessage(12, LogLevel.Warning, "Outbox: publishing event {Id} to {Topic} failed (attempt {Attempt}); it is tried again in {Delay}, and later events of its key wait behind it")]
    public static partial void OutboxPublishFailed(ILogger logger, Exception error, long id, string topic, int attempt, TimeSpan delay);

    [LoggerMessage(13, LogLevel.Error, "Outbox: event {Id} to {Topic} is stuck after {Attempt} failed publishes; only its key waits for it")]
    public static partial void OutboxStuck(ILogger logger, Exception error, long id, string topic, int attempt);

    [LoggerMessage(14, LogLevel.Error, "Outbox: the relay round failed; retrying in {Delay}")]
    public static partial void OutboxRelayFailed(ILogger logger, Exception error, TimeSpan delay);

    [LoggerMessage(15, LogLevel.Error, "Group {Group}: ending a handler's transaction failed; the event's outcome stands (it is rolled back unless it committed)")]
    public static partial void TransactionDisposeFailed(ILogger logger, Exception error, string group);

    [LoggerMessage(16, LogLevel.Warning, "Outbox: listening for commits failed; listening again in {Delay} (the relay polls meanwhile)")]
    public static partial void OutboxListenFailed(ILogger logger, Exception error, TimeSpan delay);

    [LoggerMessage(17, LogLevel.Error, "Inbox: removing old entries failed; trying again in {Delay}")]
    public static partial void InboxPurgeFailed(ILogger logger, Exception error, TimeSpan delay);

    [LoggerMessage(18, LogLevel.Information, "Inbox: removed {Count} entries older than {Retention} or beyond the newest {MaxEntries}")]
    public static partial void InboxPurged(ILogger logger, long count, TimeSpan retention, long maxEntries);

    [LoggerMessage(19, LogLevel.Warning, "Subscription '{Group}': {Running} handlers of revoked partitions still ran after the revoke timeout ({Timeout}); the partitions went without them, their records uncommitted for the next owner")]
    public static partial void RevokeTimedOut(ILogger logger, string group, int running, TimeSpan timeout);
}
