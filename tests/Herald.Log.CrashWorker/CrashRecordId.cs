using System.Globalization;

namespace Herald.Log.CrashWorker;

/// <summary>One record of a crash run: the run (one child process, or one in-process round), the
/// appender within it, and the appender's sequence number. Everything else about the record
/// derives from it (<see cref="CrashRecords.Create"/>).</summary>
public readonly record struct CrashRecordId(int Run, int Appender, int Seq)
{
    /// <summary>The record's key and the id in ACK lines: <c>w{run}-{appender}-{seq}</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"w{Run}-{Appender}-{Seq}");

    /// <summary>Parses the canonical form written by <see cref="ToString"/> and nothing else.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out CrashRecordId id)
    {
        id = default;
        if (text.Length < 6 || text[0] != 'w') return false;
        var rest = text[1..];
        var dash1 = rest.IndexOf('-');
        if (dash1 <= 0) return false;
        var afterRun = rest[(dash1 + 1)..];
        var dash2 = afterRun.IndexOf('-');
        if (dash2 <= 0) return false;
        if (!int.TryParse(rest[..dash1], NumberStyles.None, CultureInfo.InvariantCulture, out var run)
            || !int.TryParse(afterRun[..dash2], NumberStyles.None, CultureInfo.InvariantCulture, out var appender)
            || !int.TryParse(afterRun[(dash2 + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            return false;
        var parsed = new CrashRecordId(run, appender, seq);
        if (!text.SequenceEqual(parsed.ToString())) return false; // no leading zeros or other aliases
        id = parsed;
        return true;
    }
}
