namespace Herald.Bench;

/// <summary>What the garbage collector did between construction and <see cref="Stop"/>: collections
/// per generation, time paused and bytes allocated (all threads, the engine's included), and the
/// process's CPU time: on this 2-core machine CPU per message is steadier than wall-clock rates.</summary>
public sealed class GcMeter
{
    private readonly int _gen0 = GC.CollectionCount(0);
    private readonly int _gen1 = GC.CollectionCount(1);
    private readonly int _gen2 = GC.CollectionCount(2);
    private readonly TimeSpan _pause = GC.GetTotalPauseDuration();
    private readonly long _allocated = GC.GetTotalAllocatedBytes(precise: true);
    private readonly TimeSpan _cpu = Environment.CpuUsage.TotalTime;
    private readonly TimeSpan _jit = System.Runtime.JitInfo.GetCompilationTime();

    public int Gen0 { get; private set; }
    public int Gen1 { get; private set; }
    public int Gen2 { get; private set; }
    public TimeSpan Pause { get; private set; }
    public long Allocated { get; private set; }
    public TimeSpan Cpu { get; private set; }
    public TimeSpan Jit { get; private set; }

    public GcMeter Stop()
    {
        Gen0 = GC.CollectionCount(0) - _gen0;
        Gen1 = GC.CollectionCount(1) - _gen1;
        Gen2 = GC.CollectionCount(2) - _gen2;
        Pause = GC.GetTotalPauseDuration() - _pause;
        Allocated = GC.GetTotalAllocatedBytes(precise: true) - _allocated;
        Cpu = Environment.CpuUsage.TotalTime - _cpu;
        Jit = System.Runtime.JitInfo.GetCompilationTime() - _jit;
        return this;
    }

    /// <summary>Adds gc=g0/g1/g2, gc_pause_ms, alloc_bytes_per_msg, cpu_us_per_msg and jit_ms (time
    /// the JIT spent compiling meanwhile, on any thread) to a result line.</summary>
    public BenchOutput AddTo(BenchOutput output, long messages) => output
        .Add("gc", $"{Gen0}/{Gen1}/{Gen2}")
        .Add("gc_pause_ms", Pause.TotalMilliseconds, 1)
        .Add("alloc_bytes_per_msg", (double)Allocated / Math.Max(1, messages), 1)
        .Add("cpu_us_per_msg", Cpu.TotalMicroseconds / Math.Max(1, messages), 2)
        .Add("jit_ms", Jit.TotalMilliseconds, 1);
}
