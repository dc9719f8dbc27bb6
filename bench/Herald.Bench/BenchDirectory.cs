namespace Herald.Bench;

/// <summary>A fresh data directory for one run, under <c>--dir</c> or the system temp folder,
/// deleted on dispose. Knows the file system it lives on, so that a result taken on tmpfs
/// (no real fsync) says so.</summary>
public sealed class BenchDirectory : IDisposable
{
    public BenchDirectory(string? parent, string scenario)
    {
        parent = System.IO.Path.GetFullPath(parent ?? System.IO.Path.GetTempPath());
        Path = System.IO.Path.Combine(parent, $"herald-bench-{scenario}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(Path);
        FileSystem = FileSystemOf(Path);
        if (FileSystem is "tmpfs" or "ramfs")
            Console.Error.WriteLine($"warning: {Path} is on {FileSystem}: fsync costs nothing there, so durable figures mean little; pass --dir on a real disk");
    }

    public string Path { get; }

    /// <summary>The file system type of <see cref="Path"/> (ext4, xfs, tmpfs...), or "unknown".</summary>
    public string FileSystem { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException e) { Console.Error.WriteLine($"warning: could not delete {Path}: {e.Message}"); }
    }

    /// <summary>The longest mount point in /proc/self/mounts that holds <paramref name="path"/>.</summary>
    private static string FileSystemOf(string path)
    {
        const string mounts = "/proc/self/mounts";
        if (!File.Exists(mounts)) return "unknown";
        var best = "";
        var type = "unknown";
        foreach (var line in File.ReadLines(mounts))
        {
            var fields = line.Split(' ');
            if (fields.Length < 3) continue;
            var mountPoint = fields[1].Replace("\\040", " ", StringComparison.Ordinal);
            var holds = path == mountPoint || mountPoint == "/"
                || path.StartsWith(mountPoint.TrimEnd('/') + "/", StringComparison.Ordinal);
            if (holds && mountPoint.Length >= best.Length)
            {
                best = mountPoint;
                type = fields[2];
            }
        }
        return type;
    }
}
