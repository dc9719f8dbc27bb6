using System.Globalization;

namespace OrderFlow;

/// <summary>What one run of the sample does. Every share is of the orders placed, and exact: 5000
/// orders with a decline rate of 0.1 means 500 declined payments.</summary>
public sealed class OrderFlowOptions
{
    public const string Usage = """
        usage: dotnet run --project samples/OrderFlow -- [options]
          --orders N                orders to place (default 5000)
          --decline-rate R          share of payments declined (default 0.1)
          --poison-rate R           share of orders whose payment throws every time (default 0.01)
          --out-of-stock-rate R     share of orders for a sold-out item (default 0.05)
          --undeliverable-rate R    share of orders no carrier delivers, refunded after payment (default 0.02)
          --old-shop-rate R         share of orders placed by the shop's previous release, which
                                    publishes OrderPlaced version 1 (no currency); consumers upcast
                                    them to version 2 with "USD" (default 0.2)
          --seed N                  which orders get which fate, and what they buy (default 1)
          --data DIR                the embedded log's and the services' SQLite databases' directory
                                    (default: a new one per run under the temp folder)
          --postgres CONN           keep each service's state, outbox and inbox in a schema of its own
                                    (orderflow_shop, orderflow_inventory, ...) of this PostgreSQL
                                    database instead of a SQLite file, e.g.
                                    "Host=localhost;Username=postgres;Password=postgres;Database=orderflow"
          --kafka BOOTSTRAP         run every service on this Kafka cluster (host:port[,host:port...])
                                    instead of the embedded log; topics are created through the admin
                                    client with the cluster's default replication factor
          --kafka-broker-creates-topics
                                    let the broker create topics on first use instead (development
                                    clusters with auto.create.topics.enable, librdkafka's mock cluster)
          --fresh                   wipe the data directory first (without --data: earlier runs' directories),
                                    and with --postgres drop the services' schemas first
          --timeout SECONDS         give up when not every order is final by then (default 120)
        """;

    public int Orders { get; set; } = 5000;
    public double DeclineRate { get; set; } = 0.10;
    public double PoisonRate { get; set; } = 0.01;
    public double OutOfStockRate { get; set; } = 0.05;
    public double UndeliverableRate { get; set; } = 0.02;

    /// <summary>The share of orders the old shop places (as OrderPlaced version 1), independent of their fates.</summary>
    public double OldShopRate { get; set; } = 0.2;
    public int Seed { get; set; } = 1;

    /// <summary>The embedded log's directory; null for a new directory per run under the temp folder.</summary>
    public string? DataDirectory { get; set; }

    public bool Fresh { get; set; }

    /// <summary>A PostgreSQL connection string: the services' databases are schemas of it; null
    /// for a SQLite file per service in the data directory.</summary>
    public string? Postgres { get; set; }

    /// <summary>What the services' schema names start with on PostgreSQL.</summary>
    public string PostgresSchemaPrefix { get; set; } = "orderflow_";

    /// <summary>A Kafka cluster's bootstrap servers: every service runs on it; null for the embedded log.</summary>
    public string? Kafka { get; set; }

    /// <summary>With <see cref="Kafka"/>: topics are created by the broker on first use rather than through the admin client.</summary>
    public bool KafkaBrokerCreatesTopics { get; set; }

    /// <summary>With <see cref="Kafka"/>: more settings for every service's Kafka transport (a test's session timeouts, security).</summary>
    public Action<Herald.Kafka.KafkaTransportOptions>? KafkaSettings { get; set; }

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>How often a progress line is written.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The parent of the per-run data directories.</summary>
    public static string RunsDirectory => Path.Combine(Path.GetTempPath(), "herald-orderflow");

    public static OrderFlowOptions Parse(IReadOnlyList<string> args)
    {
        var options = new OrderFlowOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value");
            switch (name)
            {
                case "--orders": options.Orders = Int(name, Value()); break;
                case "--decline-rate": options.DeclineRate = Rate(name, Value()); break;
                case "--poison-rate": options.PoisonRate = Rate(name, Value()); break;
                case "--out-of-stock-rate": options.OutOfStockRate = Rate(name, Value()); break;
                case "--undeliverable-rate": options.UndeliverableRate = Rate(name, Value()); break;
                case "--old-shop-rate": options.OldShopRate = Rate(name, Value()); break;
                case "--seed": options.Seed = Int(name, Value()); break;
                case "--data": options.DataDirectory = Value(); break;
                case "--postgres": options.Postgres = Value(); break;
                case "--kafka": options.Kafka = Value(); break;
                case "--kafka-broker-creates-topics": options.KafkaBrokerCreatesTopics = true; break;
                case "--fresh": options.Fresh = true; break;
                case "--timeout": options.Timeout = TimeSpan.FromSeconds(Int(name, Value())); break;
                default: throw new ArgumentException($"unknown option '{name}'");
            }
        }
        options.Validate();
        return options;
    }

    public void Validate()
    {
        if (Orders is < 1 or > 1_000_000) throw new ArgumentException("--orders must be 1 to 1000000", nameof(Orders));
        foreach (var (name, rate) in new[] { ("--decline-rate", DeclineRate), ("--poison-rate", PoisonRate), ("--out-of-stock-rate", OutOfStockRate), ("--undeliverable-rate", UndeliverableRate), ("--old-shop-rate", OldShopRate) })
            if (rate is < 0 or > 1 || double.IsNaN(rate)) throw new ArgumentException($"{name} must be 0 to 1", name);
        if (DeclineRate + PoisonRate + OutOfStockRate + UndeliverableRate > 1)
            throw new ArgumentException("--decline-rate, --poison-rate, --out-of-stock-rate and --undeliverable-rate add up to more than 1");
        if (Kafka is not null && string.IsNullOrWhiteSpace(Kafka)) throw new ArgumentException("--kafka needs the bootstrap servers, host:port[,host:port...]", nameof(Kafka));
        if (KafkaBrokerCreatesTopics && Kafka is null) throw new ArgumentException("--kafka-broker-creates-topics needs --kafka", nameof(KafkaBrokerCreatesTopics));
        if (Postgres is { Length: 0 }) throw new ArgumentException("--postgres needs a connection string", nameof(Postgres));
        if (PostgresSchemaPrefix.Length is 0 or > 40 || !PostgresSchemaPrefix.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') || char.IsAsciiDigit(PostgresSchemaPrefix[0]))
            throw new ArgumentException($"PostgresSchemaPrefix must be 1 to 40 lower-case letters, digits and underscores, not starting with a digit; was '{PostgresSchemaPrefix}'", nameof(PostgresSchemaPrefix));
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException("--timeout must be positive", nameof(Timeout));
        if (ProgressInterval <= TimeSpan.Zero) throw new ArgumentException("ProgressInterval must be positive", nameof(ProgressInterval));
    }

    private static int Int(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"{name} must be an integer, not '{value}'");

    private static double Rate(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) ? r : throw new ArgumentException($"{name} must be a number such as 0.1, not '{value}'");
}
