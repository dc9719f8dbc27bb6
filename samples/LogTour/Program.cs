// A tour of Herald.Log, the embedded durable event log: append events durably (group commit),
// close, reopen (recovery), read them back, find an offset by time, and commit a consumer
// group's position. Usage: dotnet run --project samples/LogTour [-- --events N --data DIR]
using System.Diagnostics;
using System.Text;
using Herald.Log;

var events = 5_000;
var dataDir = Path.Combine(Path.GetTempPath(), "herald-log-tour");
for (var i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--events") events = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
    if (args[i] == "--data") dataDir = args[i + 1];
}
if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
Console.WriteLine($"Herald.Log tour: {events} order events into {dataDir}");

var topicOptions = new TopicOptions { Partitions = 3, SegmentBytes = 64 * 1024, MaxBatchBytes = 16 * 1024 };
string[] customers = ["ada", "grace", "linus", "barbara", "ken", "margaret"];
var perPartition = new long[topicOptions.Partitions];
var sw = Stopwatch.StartNew();
long midTimestamp;
await using (var log = EmbeddedLog.Open(dataDir))
{
    var orders = log.GetOrCreateTopic("orders", topicOptions);
    var appends = new List<Task<long>>(events);
    var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    midTimestamp = start + events / 2;
    for (var i = 0; i < events; i++)
    {
        var customer = customers[i % customers.Length];
        var partition = i % customers.Length % orders.Partitions.Count; // a customer always lands on one partition
        var value = Encoding.UTF8.GetBytes($$"""{"orderId":{{i}},"customer":"{{customer}}","amount":{{10 + i % 90}}}""");
        var record = new NewRecord(Encoding.UTF8.GetBytes(customer), value,
            [new LogHeader("ce_type", "OrderPlaced"u8.ToArray())], TimestampMs: start + i);
        appends.Add(orders[partition].AppendAsync(record).AsTask());
        perPartition[partition]++;
    }
    await Task.WhenAll(appends);
    Console.WriteLine($"  appended {events} events durably (fsync, group commit) in {sw.ElapsedMilliseconds} ms");
    foreach (var p in orders.Partitions)
        Console.WriteLine($"  partition {p.Id}: offsets [{p.StartOffset}, {p.EndOffset}), {p.SegmentCountForTour()} segment(s)");
}

await using (var log = EmbeddedLog.Open(dataDir))
{
    var orders = log.GetOrCreateTopic("orders");
    Console.WriteLine("Reopened the log (recovery validated every partition's tail).");
    long total = 0;
    foreach (var p in orders.Partitions)
    {
        var records = new List<LogRecord>();
        for (long offset = p.StartOffset; offset < p.EndOffset;)
        {
            var read = p.Read(offset);
            read.DecodeRecords(records);
            offset = read.NextOffset;
        }
        if (records.Count != perPartition[p.Id])
            throw new InvalidOperationException($"partition {p.Id}: read {records.Count} records, appended {perPartition[p.Id]}");
        total += records.Count;
        var first = records.FirstOrDefault();
        if (records.Count > 0)
            Console.WriteLine($"  partition {p.Id}: read {records.Count} events; first: {Encoding.UTF8.GetString(first.Value!.Value.Span)}");
        await log.Offsets.CommitAsync("billing", "orders", p.Id, p.EndOffset);
    }
    Console.WriteLine($"  read back {total} of {events} events: {(total == events ? "all present" : "MISSING EVENTS")}");
    var found = orders[0].FindOffsetByTimestamp(midTimestamp);
    Console.WriteLine($"  partition 0: first event at or after the run's midpoint is offset {found?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}");
    Console.WriteLine($"  consumer group 'billing' committed: {string.Join(", ", log.Offsets.GetCommitted("billing").OrderBy(kv => kv.Key.Partition).Select(kv => $"{kv.Key.Topic}/{kv.Key.Partition}={kv.Value}"))}");
    if (total != events) return 1;
}
Console.WriteLine($"Done in {sw.ElapsedMilliseconds} ms.");
return 0;

internal static class TourExtensions
{
    public static int SegmentCountForTour(this LogPartition partition) =>
        Directory.GetFiles(partition.Directory, "*.log").Length;
}
