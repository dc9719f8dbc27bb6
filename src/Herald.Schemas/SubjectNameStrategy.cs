namespace Herald.Schemas;

/// <summary>How an event's schema-registry subject is named.</summary>
public enum SubjectNameStrategy
{
    /// <summary><c>&lt;topic&gt;-value</c>: one schema history per topic (Confluent's default).</summary>
    TopicName,

    /// <summary>The record's full name: one history per event type, whatever its topic.</summary>
    RecordName,

    /// <summary><c>&lt;topic&gt;-&lt;record full name&gt;</c>: per event type within a topic.</summary>
    TopicRecordName,
}
