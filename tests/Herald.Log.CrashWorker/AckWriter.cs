using System.Globalization;

namespace Herald.Log.CrashWorker;

/// <summary>Writes "ACK partition offset id" lines to stdout, one whole line per write(2) so that
/// lines never interleave and a line the test reads is one the kernel already holds in the pipe
/// (it survives the SIGKILL that follows).</summary>
public sealed class AckWriter(Stream stdout)
{
    private readonly Lock _lock = new();
    private readonly byte[] _line = new byte[128];

    public void Acknowledged(int partition, long offset, CrashRecordId id)
    {
        lock (_lock)
        {
            if (!System.Text.Unicode.Utf8.TryWrite(_line, CultureInfo.InvariantCulture, $"ACK {partition} {offset} {id}\n", out var length))
                throw new InvalidOperationException($"ACK line for {id} does not fit {_line.Length} bytes");
            stdout.Write(_line, 0, length);
            stdout.Flush();
        }
    }

    /// <summary>Parses a line written by <see cref="Acknowledged"/>; false for anything else.</summary>
    public static bool TryParse(string line, out int partition, out long offset, out CrashRecordId id)
    {
        partition = 0;
        offset = 0;
        id = default;
        var parts = line.Split(' ');
        return parts.Length == 4 && parts[0] == "ACK"
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out partition)
            && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out offset)
            && CrashRecordId.TryParse(parts[3], out id);
    }

}
