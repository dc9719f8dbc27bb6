// Herald's end-to-end benchmark harness. One line per result: scenario=NAME key=value ...
// Usage: dotnet run -c Release --project bench/Herald.Bench -- <scenario> [--count N] [--size BYTES]
//        [--appenders A] [--batch B] [--window W] [--rate R] [--pace yield|burst] [--rounds K] [--keys K] [--partitions P] [--store sqlite|postgres] [--dir PATH]
// Scenarios: log-append, log-latency, log-read, raw-group-commit (the disk's own floor under log-latency),
// pipeline (publish -> durable embedded transport -> handler, end to end), and outbox (the
// transactional outbox's relay from SQLite or PostgreSQL to the embedded log), and kafka-pipeline
// (the pipeline on the Kafka transport: librdkafka's mock cluster, or --bootstrap HOST:PORT).
// serde runs BenchmarkDotNet's suite of serializers (Herald's and Confluent's, to the Confluent wire
// format and back); the arguments after it are BenchmarkDotNet's: serde [--filter PATTERN] [--job short].
using Herald.Bench;
using Herald.Bench.Scenarios;
using Herald.Bench.Serde;

if (args.Length > 0 && args[0] == "serde") return SerdeBenchmarks.Run(args[1..]);

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

switch (options.Scenario)
{
    case "log-append":
        await LogAppendScenario.RunAsync(options);
        break;
    case "log-latency":
        await LogLatencyScenario.RunAsync(options);
        break;
    case "log-read":
        await LogReadScenario.RunAsync(options);
        break;
    case "pipeline":
        await PipelineScenario.RunAsync(options);
        break;
    case "outbox":
        await OutboxScenario.RunAsync(options);
        break;
    case "kafka-pipeline":
        await KafkaPipelineScenario.RunAsync(options);
        break;
    case "raw-group-commit":
        await RawGroupCommitScenario.RunAsync(options);
        break;
    default:
        Console.Error.WriteLine($"unknown scenario '{options.Scenario}'");
        Console.Error.WriteLine(BenchOptions.Usage);
        return 2;
}
return 0;
