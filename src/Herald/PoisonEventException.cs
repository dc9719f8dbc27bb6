namespace Herald;

/// <summary>An event that cannot be handled at all, whatever the retries: it goes straight to
/// the dead-letter topic with this as its recorded failure.</summary>
public abstract class PoisonEventException(string message, Exception? inner = null) : HeraldException(message, inner);

/// <summary>The record's <c>ce_type</c> is missing or names no mapped event type.</summary>
public sealed class UnknownEventTypeException(string message) : PoisonEventException(message);

/// <summary>The record's value could not be deserialized into its event type.</summary>
public sealed class UndecodableEventException(string message, Exception inner) : PoisonEventException(message, inner);

/// <summary>The record's <c>ce_dataversion</c> is not a version this consumer can read: newer than
/// the event type's current version (a producer upgraded before this consumer), older than its
/// oldest upcaster, or not a version number at all.</summary>
public sealed class UnknownEventVersionException(string message) : PoisonEventException(message);
