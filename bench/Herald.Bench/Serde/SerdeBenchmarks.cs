using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Running;

namespace Herald.Bench.Serde;

/// <summary>serde: BenchmarkDotNet's suite of serializers to the Confluent wire format and back,
/// Herald's beside Confluent's. The arguments after "serde" are BenchmarkDotNet's (--filter,
/// --job short, ...); without a --filter every serde benchmark runs.</summary>
public static class SerdeBenchmarks
{
    public static int Run(string[] args)
    {
        if (!args.Any(a => a is "--filter" or "-f")) args = [.. args, "--filter", "*"];
        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(StatisticColumn.OperationsPerSecond)
            .WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"));
        var summaries = BenchmarkSwitcher.FromTypes([typeof(AvroSerde), typeof(JsonSerde)]).Run(args, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
