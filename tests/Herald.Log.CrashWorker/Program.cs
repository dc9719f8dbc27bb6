// The child process of the SIGKILL crash test (tests/Herald.Log.Tests/Crash): opens the log in
// the given directory and appends deterministic records (CrashRecords) from several concurrent
// appenders, each printing "ACK partition offset id" only after its append is acknowledged
// (durable). It runs until it is killed.
using System.Globalization;
using Herald.Log;
using Herald.Log.CrashWorker;

if (args.Length != 2 || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out var run))
{
    await Console.Error.WriteLineAsync("usage: Herald.Log.CrashWorker <log-directory> <run>");
    return 2;
}

const int Appenders = 8;
var acks = new AckWriter(Console.OpenStandardOutput());
await using var log = EmbeddedLog.Open(args[0], new EmbeddedLogOptions { MaintenanceInterval = null });
var topic = log.GetOrCreateTopic(CrashRecords.TopicName, CrashRecords.CreateTopicOptions());
var appenders = new Task[Appenders];
for (var a = 0; a < Appenders; a++)
{
    var appender = a;
    appenders[a] = Task.Run(() => AppendUntilKilledAsync(topic, run, appender, acks));
}
try
{
    await await Task.WhenAny(appenders);
}
catch (Exception e)
{
    await Console.Error.WriteLineAsync($"appender failed: {e}");
    return 1;
}
await Console.Error.WriteLineAsync("an appender stopped without being killed");
return 1;

static async Task AppendUntilKilledAsync(LogTopic topic, int run, int appender, AckWriter acks)
{
    var appending = new CrashAppender(topic, run, appender);
    while (true)
    {
        var (first, seq, count) = await appending.AppendNextAsync();
        for (var i = 0; i < count; i++) acks.Acknowledged(appending.Partition.Id, first + i, appending.Id(seq + i));
    }
}
