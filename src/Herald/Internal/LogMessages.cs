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
}
