namespace Herald.Outbox;

/// <summary>An event as the outbox holds it: built and encoded when it was written (its
/// <c>ce_id</c> and <c>ce_time</c> fixed then, so a second relay of it is recognisably the same
/// event), waiting for the relay. <see cref="Headers"/> are the record headers in the log's stored
/// form (<see cref="Herald.Log.RecordHeaders"/>), <see cref="HeaderCount"/> of them.</summary>
public sealed record OutboxMessage(
    long Id,
    string Topic,
    byte[]? Key,
    byte[] Value,
    byte[] Headers,
    int HeaderCount,
    long CreatedMs,
    int Attempts);
