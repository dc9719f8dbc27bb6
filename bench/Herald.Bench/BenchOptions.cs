using System.Globalization;

namespace Herald.Bench;

/// <summary>The command line of the harness. An option left out is null, and each scenario
/// picks its own default for it.</summary>
public sealed class BenchOptions
{
    public const string Usage =
        "usage: Herald.Bench <log-append|log-latency|log-read|raw-group-commit|pipeline|outbox|kafka-pipeline|serde> [--count N] [--size BYTES] [--appenders A] " +
        "[--batch B] [--window W] [--rate R] [--pace yield|burst] [--rounds K] [--warmup W] [--keys K] [--partitions P] [--store sqlite|postgres] [--bootstrap HOST:PORT] [--dir PATH]\n" +
        "       Herald.Bench serde [BenchmarkDotNet arguments: --filter PATTERN, --job short, ...]";

    public required string Scenario { get; init; }
    public long? Count { get; private set; }
    public int? Size { get; private set; }
    public int? Appenders { get; private set; }
    public int? Batch { get; private set; }
    public int? Window { get; private set; }
    public int? Rate { get; private set; }
    public int? Rounds { get; private set; }

    /// <summary>Unmeasured rounds before the measured ones (pipeline): the runtime's tiered JIT
    /// goes on compiling in the background for several seconds after start.</summary>
    public int? Warmup { get; private set; }

    /// <summary>Distinct record keys (pipeline); 0 publishes without keys.</summary>
    public int? Keys { get; private set; }

    public int? Partitions { get; private set; }

    /// <summary>How an open-loop generator waits for a record's due time: "yield" spins with
    /// Thread.Yield (exact, but keeps a core busy), "burst" sleeps ~1 ms and then sends every
    /// record that has come due.</summary>
    public string Pace { get; private set; } = "yield";

    /// <summary>outbox: the store, "sqlite" (a file in the scenario's directory) or "postgres"
    /// (HERALD_POSTGRES, or a local server as postgres/postgres).</summary>
    public string Store { get; private set; } = "sqlite";

    /// <summary>kafka-pipeline: a Kafka cluster's bootstrap servers; librdkafka's mock cluster in
    /// this process when left out.</summary>
    public string? Bootstrap { get; private set; }

    /// <summary>The parent of the scenario's fresh data directory (the system temp folder by default).</summary>
    public string? Dir { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal))
            throw new ArgumentException("the first argument must name a scenario", nameof(args));
        var options = new BenchOptions { Scenario = args[0] };
        for (var i = 1; i < args.Length; i++)
        {
            var name = args[i];
            if (i + 1 >= args.Length) throw new ArgumentException($"option {name} needs a value", nameof(args));
            var value = args[++i];
            switch (name)
            {
                case "--count": options.Count = Positive(name, value); break;
                case "--size": options.Size = (int)Positive(name, value, allowZero: true); break;
                case "--appenders": options.Appenders = (int)Positive(name, value); break;
                case "--batch": options.Batch = (int)Positive(name, value); break;
                case "--window": options.Window = (int)Positive(name, value); break;
                case "--rate": options.Rate = (int)Positive(name, value); break;
                case "--rounds": options.Rounds = (int)Positive(name, value); break;
                case "--warmup": options.Warmup = (int)Positive(name, value, allowZero: true); break;
                case "--keys": options.Keys = (int)Positive(name, value, allowZero: true); break;
                case "--partitions": options.Partitions = (int)Positive(name, value); break;
                case "--pace":
                    if (value is not ("yield" or "burst")) throw new ArgumentException($"option --pace takes yield or burst, got '{value}'", nameof(args));
                    options.Pace = value;
                    break;
                case "--store":
                    if (value is not ("sqlite" or "postgres")) throw new ArgumentException($"option --store takes sqlite or postgres, got '{value}'", nameof(args));
                    options.Store = value;
                    break;
                case "--dir": options.Dir = value; break;
                case "--bootstrap": options.Bootstrap = value; break;
                default: throw new ArgumentException($"unknown option {name}", nameof(args));
            }
        }
        return options;
    }

    private static long Positive(string name, string value, bool allowZero = false)
    {
        if (!long.TryParse(value.Replace("_", "", StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            || n > int.MaxValue || (n == 0 && !allowZero))
            throw new ArgumentException($"option {name} needs a {(allowZero ? "non-negative" : "positive")} integer below 2^31, got '{value}'", nameof(value));
        return n;
    }
}
