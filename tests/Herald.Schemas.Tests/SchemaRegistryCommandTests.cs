using System.Text.RegularExpressions;
using Herald.Cli;

namespace Herald.Schemas.Tests;

/// <summary><c>herald schema-registry</c> serving until stopped, its state kept in --data, and
/// <c>herald schema register|list|show</c> against it.</summary>
public sealed partial class SchemaRegistryCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-registry-cli-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    /// <summary>Output written from another thread, read here as it grows.</summary>
    private sealed class SharedWriter : StringWriter
    {
        private readonly Lock _lock = new();

        public override void Write(char value)
        {
            lock (_lock) base.Write(value);
        }

        public override void Write(string? value)
        {
            lock (_lock) base.Write(value);
        }

        public override void WriteLine(string? value)
        {
            lock (_lock) base.WriteLine(value);
        }

        public override string ToString()
        {
            lock (_lock) return base.ToString();
        }
    }

    private async Task<(Task<int> Run, string Url, CancellationTokenSource Stop)> ServeAsync()
    {
        var output = new SharedWriter();
        var stop = new CancellationTokenSource();
        var data = Path.Combine(_dir.FullName, "data");
        var run = Task.Run(() => HeraldCommand.Run(["schema-registry", "--listen", "127.0.0.1:0", "--data", data], output, output, stop.Token));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Listening().Match(output.ToString()) is { Success: false })
        {
            if (run.IsCompleted) throw new InvalidOperationException("schema-registry ended: " + output);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("schema-registry did not listen: " + output);
            await Task.Delay(20);
        }
        return (run, Listening().Match(output.ToString()).Groups[1].Value, stop);
    }

    [GeneratedRegex(@"listening on (http://[0-9.:]+)")]
    private static partial Regex Listening();

    private static (int Code, string Output, string Error) Cli(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = HeraldCommand.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task The_registry_serves_until_stopped_and_keeps_what_was_registered()
    {
        var schema = Path.Combine(_dir.FullName, "v1.avsc");
        await File.WriteAllTextAsync(schema, """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"}]}""");
        var (run, url, stop) = await ServeAsync();
        var register = Cli("schema", "register", "--url", url, "--subject", "orders-value", "--schema", schema);
        Assert.Equal((0, "id 1"), (register.Code, register.Output.Trim()));
        stop.Cancel();
        Assert.Equal(0, await run);

        (run, url, stop) = await ServeAsync(); // the same --data
        try
        {
            Assert.Equal("orders-value", Cli("schema", "list", "--url", url).Output.Trim());
            Assert.Equal("1", Cli("schema", "list", "--url", url, "--subject", "orders-value").Output.Trim());
            var show = Cli("schema", "show", "--url", url, "--subject", "orders-value");
            Assert.Equal(0, show.Code);
            Assert.StartsWith("orders-value version 1, id 1", show.Output, StringComparison.Ordinal);
            Assert.Contains("OrderPlaced", Cli("schema", "show", "--url", url, "--id", "1").Output, StringComparison.Ordinal);
            var missing = Cli("schema", "show", "--url", url, "--subject", "nope");
            Assert.Equal(1, missing.Code);
            Assert.Contains("40401", missing.Error, StringComparison.Ordinal);
        }
        finally
        {
            stop.Cancel();
            await run;
        }
    }

    [Fact]
    public async Task Json_schemas_and_references_are_registered_and_shown()
    {
        var customer = Path.Combine(_dir.FullName, "customer.json");
        await File.WriteAllTextAsync(customer, """{"type":"object","properties":{"name":{"type":"string"}}}""");
        var order = Path.Combine(_dir.FullName, "order.json");
        await File.WriteAllTextAsync(order, """{"type":"object","properties":{"customer":{"$ref":"customer.json"}}}""");
        var (run, url, stop) = await ServeAsync();
        try
        {
            Assert.Equal((0, "id 1"), Trimmed(Cli("schema", "register", "--url", url, "--subject", "customer", "--schema", customer, "--type", "json")));
            Assert.Equal((0, "id 2"), Trimmed(Cli("schema", "register", "--url", url, "--subject", "orders-value", "--schema", order, "--type", "json", "--reference", "customer.json=customer:1")));
            var show = Cli("schema", "show", "--url", url, "--subject", "orders-value");
            Assert.Equal(0, show.Code);
            Assert.StartsWith("orders-value version 1, id 2, JSON" + Environment.NewLine + "refers to customer.json = customer version 1" + Environment.NewLine, show.Output, StringComparison.Ordinal);

            var unknown = Cli("schema", "register", "--url", url, "--subject", "orders-value", "--schema", order, "--type", "json", "--reference", "customer.json=nobody:1");
            Assert.Equal(1, unknown.Code);
            Assert.Contains("nobody", unknown.Error, StringComparison.Ordinal);
            var malformed = Cli("schema", "register", "--url", url, "--subject", "orders-value", "--schema", order, "--reference", "customer.json");
            Assert.Equal(2, malformed.Code);
            Assert.Contains("--reference: 'customer.json' is not NAME=SUBJECT:VERSION", malformed.Error, StringComparison.Ordinal);
        }
        finally
        {
            stop.Cancel();
            await run;
        }
    }

    private static (int, string) Trimmed((int Code, string Output, string Error) result) => (result.Code, result.Output.Trim() + result.Error.Trim());
}
