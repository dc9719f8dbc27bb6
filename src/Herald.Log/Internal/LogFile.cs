namespace Herald.Log.Internal;

/// <summary>One open file of the log: positional reads and writes, data sync and truncation.
/// Everything the engine does to disk goes through this seam so that tests can fail the Nth write
/// or fsync, or drop unsynced bytes at a crash point (DESIGN.md, durability rule 8).</summary>
internal abstract class LogFile : IDisposable
{
    public abstract string Path { get; }

    public abstract long Length { get; }

    /// <summary>Reads up to dest.Length bytes at <paramref name="position"/>; returns the count read.</summary>
    public abstract int Read(Span<byte> dest, long position);

    public abstract void Write(ReadOnlySpan<byte> source, long position);

    /// <summary>fdatasync: returns once written data (and the size) are durable.</summary>
    public abstract void Sync();

    public abstract void SetLength(long length);

    /// <summary>Reads exactly dest.Length bytes or returns false at end of file.</summary>
    public bool ReadExactly(Span<byte> dest, long position)
    {
        var total = 0;
        while (total < dest.Length)
        {
            var n = Read(dest[total..], position + total);
            if (n <= 0) return false;
            total += n;
        }
        return true;
    }

    public abstract void Dispose();
}
