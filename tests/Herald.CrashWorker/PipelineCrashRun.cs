using System.Globalization;

namespace Herald.CrashWorker;

/// <summary>What the pipeline crash worker and its test agree on: names, shape, modes and files.</summary>
public static class PipelineCrashRun
{
    public const string Topic = "crash-events";
    public const string Group = "crash-handlers";
    public const int Partitions = 4;
    public const int Keys = 16;

    /// <summary>Publishes the events and handles them; runs until killed (or exits 0 once everything is handled).</summary>
    public const string PublishAndConsume = "publish+consume";

    /// <summary>Publishes nothing; handles what the group has not committed, then stops the host cleanly and exits 0.</summary>
    public const string Consume = "consume";

    /// <summary>The line the worker prints to stdout after each handled line is in the handled log.</summary>
    public const string HandledProgress = "handled";

    public static string KeyName(int key) => string.Create(CultureInfo.InvariantCulture, $"k{key:D2}");

    public static string LogDirectory(string dataDirectory) => Path.Combine(dataDirectory, "log");

    /// <summary>"key seq" per event whose PublishAsync returned (so it is durable).</summary>
    public static string PublishedLog(string dataDirectory) => Path.Combine(dataDirectory, "published.txt");

    /// <summary>"key seq partition offset" per handled event, written before its handler returns.</summary>
    public static string HandledLog(string dataDirectory, string mode) => Path.Combine(dataDirectory, mode == Consume ? "handled.consume.txt" : "handled.publish-consume.txt");

    public static string Published(PipelineCrashEvent e) => string.Create(CultureInfo.InvariantCulture, $"{e.Key} {e.Seq}\n");

    public static string Handled(PipelineCrashEvent e, int partition, long offset) =>
        string.Create(CultureInfo.InvariantCulture, $"{e.Key} {e.Seq} {partition} {offset}\n");

    public static bool TryParsePublished(string line, out PipelineCrashEvent e)
    {
        e = null!;
        var parts = line.Split(' ');
        if (parts.Length != 2 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var seq)) return false;
        e = new PipelineCrashEvent(parts[0], seq);
        return true;
    }

    public static bool TryParseHandled(string line, out PipelineCrashEvent e, out int partition, out long offset)
    {
        e = null!;
        partition = 0;
        offset = 0;
        var parts = line.Split(' ');
        if (parts.Length != 4
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out partition)
            || !long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out offset))
            return false;
        e = new PipelineCrashEvent(parts[0], seq);
        return true;
    }
}
