namespace Herald.Internal;

/// <summary>The names of the topics Herald keeps per (topic, group).</summary>
internal static class TopicNames
{
    public static string Retry(string topic, string group) => $"{topic}.{group}.retry";

    public static string DeadLetter(string topic, string group) => $"{topic}.{group}.dlq";
}
