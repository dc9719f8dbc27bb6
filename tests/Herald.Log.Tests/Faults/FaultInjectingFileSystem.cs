using Herald.Log.Internal;

namespace Herald.Log.Tests.Faults;

/// <summary>A <see cref="LogFileSystem"/> over the real one that injects the faults of DESIGN.md
/// rule 8, as SQLite's test VFS does: fail the Nth write or fsync (optionally as ENOSPC, exactly as
/// .NET reports it), keep the disk full until told otherwise, and cut the power. For the power cut
/// it tracks, per file, the length last made durable by a sync and whether its directory entry was
/// synced; <see cref="ApplyPowerCut"/> then puts every file back to what a machine that lost power
/// at that moment could hold. <see cref="BeforeOperation"/> lets a test hold or fail one exact
/// read, write or fsync.</summary>
internal sealed class FaultInjectingFileSystem(LogFileSystem inner) : LogFileSystem
{
    /// <summary>ENOSPC, the HResult .NET gives the IOException of a full disk on Unix.</summary>
    public const int DiskFullHResult = 28;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, FileState> _files = new(StringComparer.Ordinal);
    private long _operations;
    private long _opens;
    private FaultRule? _rule;
    private long _powerCutAt = -1;
    private bool _diskFull;
    private bool _poweredOff;
    private Action<FileOperation>? _beforeOperation;

    /// <summary>Faults injected so far.</summary>
    public int InjectedFaults { get; private set; }

    /// <summary>Runs before every read, write and file sync, on the thread doing it and outside this
    /// layer's lock: a test can hold that thread at an exact point (see <see cref="FilePause"/>),
    /// count operations per file handle, or throw an <see cref="IOException"/> to fail that one.</summary>
    public Action<FileOperation>? BeforeOperation
    {
        get => Volatile.Read(ref _beforeOperation);
        set => Volatile.Write(ref _beforeOperation, value);
    }

    public bool IsPoweredOff
    {
        get { lock (_lock) return _poweredOff; }
    }

    /// <summary>While true every write fails with ENOSPC, after writing part of its bytes.</summary>
    public bool DiskFull
    {
        get { lock (_lock) return _diskFull; }
        set { lock (_lock) _diskFull = value; }
    }

    /// <summary>The <paramref name="n"/>th write from now (1 = the next) fails after writing part of
    /// its bytes; with <paramref name="fileSuffix"/>, the nth write to a file whose name ends so.</summary>
    public void FailWrite(int n, bool diskFull = false, string? fileSuffix = null)
    {
        lock (_lock) _rule = new FaultRule(Sync: false, n, diskFull, fileSuffix, NewFilesOnly: false, ArmedAt: _opens);
    }

    /// <summary>The <paramref name="n"/>th file sync from now fails, its data on disk or not; with
    /// <paramref name="fileSuffix"/>, the nth sync of a file whose name ends so, and with
    /// <paramref name="newFilesOnly"/>, of a file created from now on.</summary>
    public void FailSync(int n, bool diskFull = false, string? fileSuffix = null, bool newFilesOnly = false)
    {
        lock (_lock) _rule = new FaultRule(Sync: true, n, diskFull, fileSuffix, newFilesOnly, ArmedAt: _opens);
    }

    /// <summary>Cuts the power at the <paramref name="n"/>th write or file sync from now: that
    /// operation and every later one fails, as if the process had stopped there.</summary>
    public void CutPowerAt(int n)
    {
        lock (_lock) _powerCutAt = _operations + n;
    }

    /// <summary>Cuts the power now.</summary>
    public void CutPower()
    {
        lock (_lock) _poweredOff = true;
    }

    private IOException PoweredOffError(string path) => new($"simulated power cut: '{path}' is gone with the machine");

    private void ThrowIfPoweredOff(string path)
    {
        if (_poweredOff) throw PoweredOffError(path);
    }

    public override LogFile Open(string path, bool create)
    {
        path = Path.GetFullPath(path);
        lock (_lock)
        {
            ThrowIfPoweredOff(path);
            var existed = File.Exists(path);
            var file = inner.Open(path, create);
            _opens++;
            if (!existed || !_files.TryGetValue(path, out var state))
            {
                // A file this layer has not seen before is taken as durable as it stands.
                state = new FileState { SyncedLength = existed ? file.Length : 0, EntryDurable = existed, CreatedAt = existed ? -1 : _opens };
                _files[path] = state;
            }
            return new FaultInjectingFile(this, file, state, _opens);
        }
    }

    public override void SyncDirectory(string path)
    {
        path = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        lock (_lock) ThrowIfPoweredOff(path);
        inner.SyncDirectory(path);
        lock (_lock)
        {
            ThrowIfPoweredOff(path); // the power went while it ran: it did not complete
            foreach (var (file, state) in _files)
                if (Path.GetDirectoryName(file) == path) state.EntryDurable = true;
        }
    }

    public override bool Exists(string path) => inner.Exists(path);

    public override void Delete(string path)
    {
        path = Path.GetFullPath(path);
        lock (_lock)
        {
            ThrowIfPoweredOff(path);
            inner.Delete(path);
            _files.Remove(path);
        }
    }

    public override void Move(string from, string to)
    {
        from = Path.GetFullPath(from);
        to = Path.GetFullPath(to);
        lock (_lock)
        {
            ThrowIfPoweredOff(from);
            var replaced = _files.TryGetValue(to, out var old) ? old.EntryDurable : File.Exists(to);
            inner.Move(from, to);
            if (_files.Remove(from, out var state))
            {
                // Renamed over a durable entry, the name survives a crash (holding the old or the new
                // file; this layer keeps the new one); a new name needs its directory synced.
                state.EntryDurable = replaced;
                _files[to] = state;
            }
        }
    }

    public override byte[] ReadAll(string path)
    {
        lock (_lock) ThrowIfPoweredOff(path);
        return inner.ReadAll(path);
    }

    /// <summary>After the power cut and once the log has let go of its files: every file whose
    /// directory entry was never synced disappears, and every other one is cut back to its synced
    /// length, its unsynced tail lost, partly kept, or replaced by garbage or zeros as
    /// <paramref name="random"/> decides. Returns the bytes dropped.</summary>
    public long ApplyPowerCut(Random random, bool leaveDebris = true)
    {
        lock (_lock)
        {
            if (!_poweredOff) throw new InvalidOperationException("the power is still on");
            long dropped = 0;
            foreach (var (path, state) in _files)
            {
                if (!File.Exists(path)) continue;
                var length = new FileInfo(path).Length;
                if (!state.EntryDurable)
                {
                    dropped += length;
                    File.Delete(path);
                    continue;
                }
                if (length <= state.SyncedLength) continue;
                using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                var tail = length - state.SyncedLength;
                switch (leaveDebris ? random.Next(4) : 0)
                {
                    case 0: // the unsynced tail is lost
                        stream.SetLength(state.SyncedLength);
                        dropped += tail;
                        break;
                    case 1: // some of it reached the disk (a torn write)
                        var kept = random.NextInt64(0, tail + 1);
                        stream.SetLength(state.SyncedLength + kept);
                        dropped += tail - kept;
                        break;
                    case 2: // the size was updated but the data blocks hold garbage
                    case 3: // ... or zeros
                        var debris = new byte[(int)Math.Min(tail, random.Next(1, 4097))];
                        if (random.Next(4) == 2) random.NextBytes(debris);
                        stream.SetLength(state.SyncedLength);
                        stream.Position = state.SyncedLength;
                        stream.Write(debris);
                        dropped += tail;
                        break;
                }
            }
            _files.Clear();
            return dropped;
        }
    }

    /// <summary>The injected fault if this operation is the one the rule picks.</summary>
    private IOException? RuleFault(FaultInjectingFile file, bool sync)
    {
        if (_rule is not { } rule || rule.Sync != sync) return null;
        if (rule.FileSuffix is { } suffix && !file.Path.EndsWith(suffix, StringComparison.Ordinal)) return null;
        if (rule.NewFilesOnly && file.State.CreatedAt <= rule.ArmedAt) return null;
        if (--rule.Remaining > 0) return null;
        _rule = null;
        return Fault(file.Path, rule.DiskFull, sync ? "fsync" : "write");
    }

    private IOException Fault(string path, bool diskFull, string what)
    {
        InjectedFaults++;
        return diskFull
            ? new IOException($"No space left on device : '{path}'", DiskFullHResult)
            : new IOException($"Input/output error (injected {what} fault) : '{path}'", 5);
    }

    private void Before(FileOperationKind kind, FaultInjectingFile file)
    {
        if (BeforeOperation is { } hook) hook(new FileOperation(kind, file.Path, file.Handle, file.Inner.Length));
    }

    private int Read(FaultInjectingFile file, Span<byte> dest, long position)
    {
        Before(FileOperationKind.Read, file);
        return file.Inner.Read(dest, position);
    }

    private void Write(FaultInjectingFile file, ReadOnlySpan<byte> source, long position)
    {
        Before(FileOperationKind.Write, file);
        IOException? fault = null;
        lock (_lock)
        {
            ThrowIfPoweredOff(file.Path);
            if (++_operations == _powerCutAt)
            {
                _poweredOff = true;
                throw PoweredOffError(file.Path);
            }
            fault = RuleFault(file, sync: false) ?? (_diskFull ? Fault(file.Path, diskFull: true, "write") : null);
        }
        if (fault is not null)
        {
            // A real failed write may have stored part of its bytes first.
            if (source.Length > 1) file.Inner.Write(source[..(source.Length / 2)], position);
            throw fault;
        }
        file.Inner.Write(source, position);
    }

    private void Sync(FaultInjectingFile file)
    {
        Before(FileOperationKind.Sync, file);
        long length;
        lock (_lock)
        {
            ThrowIfPoweredOff(file.Path);
            if (++_operations == _powerCutAt)
            {
                _poweredOff = true;
                throw PoweredOffError(file.Path);
            }
            if (RuleFault(file, sync: true) is { } fault) throw fault;
            length = file.Inner.Length;
        }
        file.Inner.Sync();
        lock (_lock)
        {
            ThrowIfPoweredOff(file.Path); // the power went while it ran: it did not complete
            file.State.SyncedLength = length;
        }
    }

    private void SetLength(FaultInjectingFile file, long length)
    {
        lock (_lock)
        {
            ThrowIfPoweredOff(file.Path);
            file.Inner.SetLength(length);
            // A shrink is taken as durable at once (the engine syncs after each); a growth is not.
            file.State.SyncedLength = Math.Min(file.State.SyncedLength, length);
        }
    }

    private sealed class FileState
    {
        public long SyncedLength;
        public bool EntryDurable;
        public long CreatedAt; // the open that created it, -1 if it existed before
    }

    private sealed record FaultRule(bool Sync, int Remaining, bool DiskFull, string? FileSuffix, bool NewFilesOnly, long ArmedAt)
    {
        public int Remaining { get; set; } = Remaining;
    }

    private sealed class FaultInjectingFile(FaultInjectingFileSystem fs, LogFile inner, FileState state, long handle) : LogFile
    {
        public LogFile Inner => inner;

        /// <summary>The number of the open that made this handle: one per handle.</summary>
        public long Handle { get; } = handle;

        public FileState State => state;

        public override string Path => inner.Path;

        public override long Length => inner.Length;

        public override int Read(Span<byte> dest, long position) => fs.Read(this, dest, position);

        public override void Write(ReadOnlySpan<byte> source, long position) => fs.Write(this, source, position);

        public override void Sync() => fs.Sync(this);

        public override void SetLength(long length) => fs.SetLength(this, length);

        // Always closes the real handle, power or not: this is how an abandoned log lets go of its files.
        public override void Dispose() => inner.Dispose();
    }
}

internal enum FileOperationKind
{
    Read,
    Write,
    Sync,
}

/// <summary>A read, write or file sync about to run: the file, the number of the open that made its
/// handle (so that two handles of one file tell apart), and the file's length before it.</summary>
internal readonly record struct FileOperation(FileOperationKind Kind, string Path, long Handle, long Length)
{
    public string FileName => System.IO.Path.GetFileName(Path);
}
