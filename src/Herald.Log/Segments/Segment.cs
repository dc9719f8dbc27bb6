using System.Globalization;
using Herald.Log.Internal;

namespace Herald.Log.Segments;

/// <summary>One segment file of a partition: batches from <see cref="BaseOffset"/> on, with its
/// indexes. The partition's writer owns the mutable fields; readers see <see cref="CommittedSize"/>.
/// Reference counted so that retention and compaction can retire a segment under readers.</summary>
internal sealed class Segment
{
    private readonly Lock _refLock = new();
    private int _readers;
    private bool _retired;
    private bool _deleteOnRetire;
    private readonly LogFileSystem _fs;

    public Segment(LogFileSystem fs, string logPath, long baseOffset, LogFile file, SegmentIndex index)
    {
        _fs = fs;
        LogPath = logPath;
        BaseOffset = baseOffset;
        File = file;
        Index = index;
    }

    public long BaseOffset { get; }
    public string LogPath { get; }
    public LogFile File { get; }
    public SegmentIndex Index { get; }

    /// <summary>Bytes of whole batches written (writer's view).</summary>
    public long Size { get; set; }

    /// <summary>Bytes readers may read: durable per the topic's policy.</summary>
    public long CommittedSize { get => Volatile.Read(ref _committedSize); set => Volatile.Write(ref _committedSize, value); }
    private long _committedSize;

    /// <summary>The offset after the last batch in this segment.</summary>
    public long NextOffset { get => Volatile.Read(ref _nextOffset); set => Volatile.Write(ref _nextOffset, value); }
    private long _nextOffset;

    /// <summary>When the segment got its first batch (for age-based rolling).</summary>
    public DateTimeOffset? FirstAppend { get; set; }

    public bool Sealed { get; set; }

    public long MaxTimestamp => Index.MaxTimestamp;

    public static string FileName(long baseOffset) => baseOffset.ToString("D20", CultureInfo.InvariantCulture) + ".log";

    public bool TryAcquire()
    {
        lock (_refLock)
        {
            if (_retired) return false;
            _readers++;
            return true;
        }
    }

    public void Release()
    {
        bool close;
        lock (_refLock)
        {
            _readers--;
            close = _retired && _readers == 0;
        }
        if (close) Close();
    }

    /// <summary>Takes the segment out of service: closes (and deletes, if asked) once no reader holds it.</summary>
    public void Retire(bool deleteFiles)
    {
        bool close;
        lock (_refLock)
        {
            if (_retired) return;
            _retired = true;
            _deleteOnRetire = deleteFiles;
            close = _readers == 0;
        }
        if (close) Close();
    }

    private void Close()
    {
        File.Dispose();
        if (!_deleteOnRetire) return;
        try
        {
            _fs.Delete(LogPath);
            _fs.Delete(SegmentIndex.IndexPath(LogPath));
            _fs.Delete(SegmentIndex.TimeIndexPath(LogPath));
            // The delete may run long after the retirement (when the last reader leaves): make it
            // durable here too (DESIGN.md rule 3).
            _fs.SyncDirectory(Path.GetDirectoryName(LogPath)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The segment is already out of the partition; this runs in a reader's Release, whose
            // read succeeded. A file left behind holds only data retention meant to drop: the next
            // maintenance pass after a reopen deletes it again.
            DeleteError = e;
        }
    }

    /// <summary>Why deleting the retired segment's files failed, if it did.</summary>
    public Exception? DeleteError { get; private set; }
}
