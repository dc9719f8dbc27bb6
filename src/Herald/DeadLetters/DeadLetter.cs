using Herald.Log;

namespace Herald.DeadLetters;

/// <summary>Identifies a dead letter: its partition and offset in the dead-letter topic.</summary>
public readonly record struct DeadLetterId(int Partition, long Offset)
{
    public override string ToString() => $"{Partition}:{Offset}";
}

/// <summary>Why an event is in the dead-letter topic.</summary>
public enum DeadLetterReason
{
    /// <summary>Its handler kept failing through every retry.</summary>
    Failed,

    /// <summary>It could not be handled at all: unknown event type or undecodable payload. No retries were made.</summary>
    Poison,

    /// <summary>It did not fail itself: an earlier event of its key is dead-lettered and the
    /// subscription parks keys, so it followed, in order.</summary>
    Parked,
}

/// <summary>An unresolved dead letter: the event as it was published, where it came from, and the
/// failure that put it (or, for a parked event, the event of its key ahead of it) here.</summary>
public sealed record DeadLetter
{
    public required DeadLetterId Id { get; init; }
    public required string Topic { get; init; }
    public required string Group { get; init; }
    public required DeadLetterReason Reason { get; init; }
    public required int OriginalPartition { get; init; }
    public required long OriginalOffset { get; init; }
    public ReadOnlyMemory<byte>? Key { get; init; }
    public string? KeyText => Key is { } k ? System.Text.Encoding.UTF8.GetString(k.Span) : null;
    public string? EventType { get; init; }
    public string? EventId { get; init; }

    /// <summary>The record's <c>ce_dataversion</c> as written (null when absent, which is version 1):
    /// with a poison <see cref="UnknownEventVersionException"/>, the version the consumer could not read.</summary>
    public string? EventVersion { get; init; }
    public int Attempts { get; init; }
    public DateTimeOffset? FirstFailure { get; init; }
    public DateTimeOffset? LastFailure { get; init; }
    public string? ExceptionType { get; init; }
    public string? ExceptionMessage { get; init; }
    public string? StackTrace { get; init; }

    /// <summary>The first stack frame in application code ("Type.Method"), when found.</summary>
    public string? FailureFrame { get; init; }

    /// <summary>For a parked event, the original offset of the dead-lettered event of its key it follows.</summary>
    public long? ParkedBehind { get; init; }

    public ReadOnlyMemory<byte>? Value { get; init; }
    public required IReadOnlyList<LogHeader> Headers { get; init; }

    /// <summary>The failure group: exception type and first application frame.</summary>
    public string FailureGroup => $"{ExceptionType ?? "?"} at {FailureFrame ?? "?"}";
}

/// <summary>Dead letters that share a failure (exception type and first application frame).</summary>
public sealed record DeadLetterFailureGroup(string FailureGroup, string? ExceptionType, string? FailureFrame, int Count, int Keys, string? SampleMessage, DateTimeOffset? LastFailure);

/// <summary>Which dead letters an operation applies to.</summary>
public sealed class DeadLetterSelection
{
    private DeadLetterSelection() { }

    internal DeadLetterId? Id { get; private init; }
    internal ReadOnlyMemory<byte>? KeyBytes { get; private init; }
    internal string? Group { get; private init; }

    /// <summary>One dead letter.</summary>
    public static DeadLetterSelection One(DeadLetterId id) => new() { Id = id };

    /// <summary>Every dead letter of one key, in order.</summary>
    public static DeadLetterSelection Key(string key) => new() { KeyBytes = System.Text.Encoding.UTF8.GetBytes(key) };

    /// <summary>Every dead letter of one failure group (see <see cref="DeadLetter.FailureGroup"/>),
    /// together with the events parked behind them.</summary>
    public static DeadLetterSelection FailureGroup(string failureGroup) => new() { Group = failureGroup };

    internal bool Matches(DeadLetter d) =>
        Id is { } id ? d.Id == id
        : KeyBytes is { } k ? d.Key is { } dk && dk.Span.SequenceEqual(k.Span)
        : d.FailureGroup == Group;

    public override string ToString() => Id is { } id ? $"dead letter {id}" : KeyBytes is { } k ? $"key '{System.Text.Encoding.UTF8.GetString(k.Span)}'" : $"failure group '{Group}'";
}

/// <summary>Where a replayed dead letter goes.</summary>
public enum ReplayTarget
{
    /// <summary>Back to the group that failed it (through its retry topic), in key order; other groups do not see it again.</summary>
    OriginalGroup,

    /// <summary>Published again to the original topic: every group sees it as a new event.</summary>
    OriginalTopic,
}
