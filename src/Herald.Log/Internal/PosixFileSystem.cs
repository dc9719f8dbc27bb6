using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Herald.Log.Internal;

/// <summary>The real file system: pread/pwrite through <see cref="RandomAccess"/>, fdatasync and
/// directory fsync through libc.</summary>
internal sealed class PosixFileSystem : LogFileSystem
{
    public static PosixFileSystem Instance { get; } = new();

    public override LogFile Open(string path, bool create)
    {
        var handle = File.OpenHandle(path, create ? FileMode.OpenOrCreate : FileMode.Open,
            FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        return new PosixFile(path, handle);
    }

    public override void SyncDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) return; // NTFS metadata is journaled with the file flush
        var fd = Native.open(path, Native.O_RDONLY | Native.O_DIRECTORY | Native.O_CLOEXEC);
        if (fd < 0) throw Native.Error(path);
        try
        {
            if (Native.fsync(fd) != 0) throw Native.Error(path);
        }
        finally
        {
            _ = Native.close(fd);
        }
    }

    private sealed class PosixFile(string path, SafeFileHandle handle) : LogFile
    {
        public override string Path => path;

        public override long Length => RandomAccess.GetLength(handle);

        public override int Read(Span<byte> dest, long position) => RandomAccess.Read(handle, dest, position);

        public override void Write(ReadOnlySpan<byte> source, long position) => RandomAccess.Write(handle, source, position);

        public override void Sync()
        {
            if (OperatingSystem.IsWindows())
            {
                using var stream = new FileStream(new SafeFileHandle(handle.DangerousGetHandle(), ownsHandle: false), FileAccess.ReadWrite);
                stream.Flush(flushToDisk: true);
                return;
            }
            var fd = (int)handle.DangerousGetHandle();
            var rc = OperatingSystem.IsLinux() ? Native.fdatasync(fd) : Native.fsync(fd);
            if (rc != 0) throw Native.Error(path);
        }

        public override void SetLength(long length) => RandomAccess.SetLength(handle, length);

        public override void Dispose() => handle.Dispose();
    }

    private static class Native
    {
        public const int O_RDONLY = 0;
        public static readonly int O_DIRECTORY = OperatingSystem.IsLinux() ? 0x10000 : 0x100000;
        public static readonly int O_CLOEXEC = OperatingSystem.IsLinux() ? 0x80000 : 0x1000000;

        [DllImport("libc", SetLastError = true)]
        public static extern int fdatasync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);

        public static IOException Error(string path)
        {
            var errno = Marshal.GetLastPInvokeError();
            return new IOException($"{Marshal.GetPInvokeErrorMessage(errno)} : '{path}'", errno);
        }
    }
}
