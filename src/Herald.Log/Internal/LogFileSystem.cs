namespace Herald.Log.Internal;

/// <summary>The file operations the log performs, with the durable small-file write of
/// DESIGN.md rule 4 built from them.</summary>
internal abstract class LogFileSystem
{
    /// <summary>Opens (or creates) a file for reading and writing, shared with readers.</summary>
    public abstract LogFile Open(string path, bool create);

    /// <summary>fsyncs a directory so that creates, renames and deletes in it are durable.</summary>
    public abstract void SyncDirectory(string path);

    public virtual bool Exists(string path) => File.Exists(path);

    public virtual void Delete(string path) => File.Delete(path);

    public virtual void Move(string from, string to) => File.Move(from, to, overwrite: true);

    public virtual byte[] ReadAll(string path) => File.ReadAllBytes(path);

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> crash-safely:
    /// temp file, fsync, rename over the old one, fsync the directory.</summary>
    public void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var temp = path + ".tmp";
        using (var file = Open(temp, create: true))
        {
            file.SetLength(0);
            file.Write(content, 0);
            file.Sync();
        }
        Move(temp, path);
        SyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
    }
}
