using System.Text;

namespace Herald.CrashWorker;

/// <summary>Text lines appended to a file or to stdout, one whole line per write(2) and no
/// buffering in between: once <see cref="Append"/> returns, the line is in the kernel (the page
/// cache or the pipe), which a SIGKILL of this process does not lose. Safe for concurrent callers.</summary>
public sealed class LineLog(Stream stream) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly byte[] _line = new byte[256];

    /// <summary>Appends to the file at <paramref name="path"/>, creating it if needed.</summary>
    public static LineLog AppendTo(string path) =>
        new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0));

    /// <summary>Writes <paramref name="line"/> (ASCII, ending with a newline) with one write.</summary>
    public void Append(string line)
    {
        lock (_lock)
        {
            var length = Encoding.ASCII.GetBytes(line, _line);
            stream.Write(_line, 0, length);
            if (stream is FileStream file) file.Flush(flushToDisk: false);
            else stream.Flush();
        }
    }

    public void Dispose() => stream.Dispose();
}
