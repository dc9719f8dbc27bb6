using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Herald.Bench.Scenarios;

/// <summary>raw-group-commit: the floor under log-latency on this disk. The same open-loop
/// generator hands records to one writer thread that does what the engine's writer does at its
/// barest: take everything pending, one pwrite, one fdatasync, acknowledge (stamped on the writer
/// thread: no encoding, no CRC, no thread-pool hop). Also reports the fdatasync times it saw.</summary>
public static class RawGroupCommitScenario
{
    public static async Task RunAsync(BenchOptions options)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("raw-group-commit calls fdatasync (Linux)");
        var rate = options.Rate ?? 100_000;
        var measured = (int)(options.Count ?? 500_000);
        var size = options.Size ?? 128;
        var warmup = Math.Max(1, rate / 2);
        var total = checked(measured + warmup);
        var payload = new byte[size];
        new Random(42).NextBytes(payload);

        using var dir = new BenchDirectory(options.Dir, "raw-group-commit");
        using var handle = File.OpenHandle(Path.Combine(dir.Path, "raw.log"), FileMode.CreateNew, FileAccess.ReadWrite);
        var recorder = new LatencyRecorder(total, warmup);
        var queue = new Queue(total);
        var syncs = new List<long>(1 << 16);

        var writer = new Thread(() =>
        {
            var fd = (int)handle.DangerousGetHandle();
            var buffer = new byte[1 << 20];
            long position = 0;
            var group = new List<int>(1 << 16);
            while (queue.Take(ref group))
            {
                var frame = size + 4;
                if (buffer.Length < group.Count * frame) buffer = new byte[group.Count * frame * 2];
                for (var k = 0; k < group.Count; k++)
                {
                    BitConverter.TryWriteBytes(buffer.AsSpan(k * frame), size);
                    payload.CopyTo(buffer.AsSpan(k * frame + 4));
                }
                RandomAccess.Write(handle, buffer.AsSpan(0, group.Count * frame), position);
                position += group.Count * frame;
                var before = Stopwatch.GetTimestamp();
                if (fdatasync(fd) != 0) throw new IOException($"fdatasync failed: errno {Marshal.GetLastPInvokeError()}");
                var ack = Stopwatch.GetTimestamp();
                syncs.Add(ack - before);
                foreach (var i in group) recorder.Acks[i] = ack;
                group.Clear();
            }
        })
        { Name = "raw writer", IsBackground = true };
        writer.Start();

        var pacer = new Pacer(rate, options.Pace);
        var generator = new Thread(() =>
        {
            pacer.Start();
            for (var i = 0; i < total; i++)
            {
                recorder.Dues[i] = pacer.WaitUntilDue(i);
                recorder.Starts[i] = Stopwatch.GetTimestamp();
                queue.Add(i);
            }
            queue.Complete();
        })
        { Name = "bench generator", IsBackground = true };
        generator.Start();
        await Task.Run(() => { generator.Join(); writer.Join(); });

        var sorted = syncs.ToArray();
        Array.Sort(sorted);
        recorder.AddTo(new BenchOutput("raw-group-commit"))
            .Add("rate", rate)
            .Add("pace", options.Pace)
            .Add("count", measured)
            .Add("warmup", warmup)
            .Add("size", size)
            .Add("fsyncs", sorted.Length)
            .Add("fsync_p50_us", LatencyRecorder.Micros(LatencyRecorder.Percentile(sorted, 0.50)), 1)
            .Add("fsync_p99_us", LatencyRecorder.Micros(LatencyRecorder.Percentile(sorted, 0.99)), 1)
            .Add("fsync_p999_us", LatencyRecorder.Micros(LatencyRecorder.Percentile(sorted, 0.999)), 1)
            .Add("fsync_max_us", LatencyRecorder.Micros(sorted[^1]), 1)
            .Add("fs", dir.FileSystem)
            .Print();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int fdatasync(int fd);

    /// <summary>The pending records: the generator adds, the writer takes all of them at once.</summary>
    private sealed class Queue(int capacity)
    {
        private readonly object _gate = new(); // Monitor.Wait/Pulse, as the engine's writer
        private List<int> _pending = new(Math.Min(capacity, 1 << 16));
        private bool _waiting;
        private bool _completed;

        public void Add(int index)
        {
            lock (_gate)
            {
                _pending.Add(index);
                if (_waiting) Monitor.Pulse(_gate);
            }
        }

        public void Complete()
        {
            lock (_gate)
            {
                _completed = true;
                if (_waiting) Monitor.Pulse(_gate);
            }
        }

        /// <summary>Swaps the pending records into <paramref name="group"/> (which must be empty);
        /// false once completed and drained.</summary>
        public bool Take(ref List<int> group)
        {
            lock (_gate)
            {
                while (_pending.Count == 0 && !_completed)
                {
                    _waiting = true;
                    Monitor.Wait(_gate);
                    _waiting = false;
                }
                if (_pending.Count == 0) return false;
                (_pending, group) = (group, _pending);
                return true;
            }
        }
    }
}
