using System.CommandLine;
using System.Text.Json.Nodes;
using Herald.Schemas.Compatibility;
using Herald.Schemas.Registry;

namespace Herald.Cli;

/// <summary>The herald command line: <c>herald schema compat|register|list|show</c> and <c>herald schema-registry</c>.</summary>
internal static class HeraldCommand
{
    /// <summary>Exit codes of <c>herald schema compat</c>.</summary>
    internal const int Compatible = 0, Incompatible = 1, Unreadable = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("Herald: event-driven systems on .NET.");
        var schema = new Command("schema", "Schemas: compatibility between versions, and a registry's subjects.");
        schema.Subcommands.Add(Compat(output, error));
        var url = new Option<string>("--url") { Description = "The schema registry's URL.", DefaultValueFactory = _ => "http://127.0.0.1:8081" };
        schema.Subcommands.Add(Register(url, output, error));
        schema.Subcommands.Add(List(url, output, error));
        schema.Subcommands.Add(Show(url, output, error));
        root.Subcommands.Add(schema);
        root.Subcommands.Add(Registry(output, error, cancellationToken));
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) error.WriteLine(e.Message);
            return Unreadable;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    private static Command Compat(TextWriter output, TextWriter error)
    {
        var type = new Option<string>("--type") { Description = "The schemas' type: avro or json (JSON Schema).", Required = true };
        type.AcceptOnlyFromAmong("avro", "json");
        var level = new Option<string>("--level") { Description = "NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE.", Required = true };
        var newSchema = new Option<FileInfo>("--schema") { Description = "The new schema's file.", Required = true };
        var against = new Option<FileInfo[]>("--against")
        {
            Description = "An older version's file; repeat it, oldest first. Non-transitive levels check the newest only.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var command = new Command("compat", "Checks a new schema against older versions at a compatibility level, as Confluent's registry does. Exit code 0: compatible, 1: not, 2: a schema could not be read.")
        {
            type, level, newSchema, against,
        };
        command.SetAction(parsed =>
        {
            var levelName = parsed.GetValue(level)!;
            if (!CompatibilityLevels.TryParse(levelName, out var parsedLevel))
            {
                error.WriteLine($"--level: '{levelName}' is not one of {string.Join(", ", Enum.GetValues<CompatibilityLevel>().Select(l => l.ToConfluentName()))}");
                return Unreadable;
            }
            var files = parsed.GetValue(against)!;
            string newText;
            var olderTexts = new List<string>();
            try
            {
                newText = Read(parsed.GetValue(newSchema)!);
                foreach (var file in files) olderTexts.Add(Read(file));
            }
            catch (IOException e)
            {
                error.WriteLine(e.Message);
                return Unreadable;
            }
            CompatibilityResult result;
            try
            {
                var newName = parsed.GetValue(newSchema)!.Name;
                if (parsed.GetValue(type) == "json")
                {
                    var newParsed = SchemaCompatibility.ParseJson(newText, newName);
                    var olderParsed = olderTexts.Select((t, i) => SchemaCompatibility.ParseJson(t, files[i].Name)).ToList();
                    result = SchemaCompatibility.CheckJson(newParsed, olderParsed, parsedLevel);
                }
                else
                {
                    var newParsed = SchemaCompatibility.ParseAvro(newText, newName);
                    var olderParsed = olderTexts.Select((t, i) => SchemaCompatibility.ParseAvro(t, files[i].Name)).ToList();
                    result = SchemaCompatibility.CheckAvro(newParsed, olderParsed, parsedLevel);
                }
            }
            catch (InvalidSchemaException e)
            {
                error.WriteLine(e.Message);
                return Unreadable;
            }
            if (result.IsCompatible)
            {
                output.WriteLine($"compatible ({parsedLevel.ToConfluentName()}, against {Against(parsedLevel, files)})");
                return Compatible;
            }
            output.WriteLine($"incompatible ({parsedLevel.ToConfluentName()}): {result.Differences.Count} breaking difference{(result.Differences.Count == 1 ? "" : "s")}");
            foreach (var d in result.Differences)
                output.WriteLine($"  {(d.Path.Length == 0 ? "(root)" : d.Path)}: {d.Message} ({(d.Direction == CompatibilityDirection.Backward ? "new cannot read" : "cannot read new with")} {files[d.Version - 1].Name})");
            return Incompatible;
        });
        return command;
    }

    /// <summary><c>herald schema-registry --listen HOST:PORT --data DIR</c>: the registry's REST API until stopped.</summary>
    private static Command Registry(TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var listen = new Option<string>("--listen") { Description = "Where to listen, HOST:PORT.", DefaultValueFactory = _ => "127.0.0.1:8081" };
        var data = new Option<DirectoryInfo>("--data") { Description = "The registry's data directory (its SQLite file, registry.db).", Required = true };
        var command = new Command("schema-registry", "Runs a Confluent-compatible schema registry until stopped (Ctrl+C).") { listen, data };
        command.SetAction(async (parsed, token) =>
        {
            var directory = parsed.GetValue(data)!;
            var address = parsed.GetValue(listen)!;
            if (!Uri.TryCreate("http://" + address, UriKind.Absolute, out var uri) || uri.Port < 0 || uri.AbsolutePath != "/")
            {
                error.WriteLine($"--listen: '{address}' is not HOST:PORT");
                return Unreadable;
            }
            directory.Create();
            using var registry = EmbeddedSchemaRegistry.Open(Path.Combine(directory.FullName, "registry.db"));
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(token, cancellationToken);
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            var server = await SchemaRegistryApi.StartAsync(registry, $"http://{address}", stop.Token);
            await output.WriteLineAsync($"schema registry listening on {string.Join(", ", server.Urls)}, data in {directory.FullName}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            await server.StopAsync(CancellationToken.None);
            await server.DisposeAsync();
            return 0;
        });
        return command;
    }

    private static Command Register(Option<string> url, TextWriter output, TextWriter error)
    {
        var subject = new Option<string>("--subject") { Description = "The subject, such as orders-value.", Required = true };
        var file = new Option<FileInfo>("--schema") { Description = "The schema's file.", Required = true };
        var type = new Option<string>("--type") { Description = "The schema's type: avro (the default) or json (JSON Schema).", DefaultValueFactory = _ => "avro" };
        type.AcceptOnlyFromAmong("avro", "json");
        var references = new Option<string[]>("--reference")
        {
            Description = "A schema this one refers to, NAME=SUBJECT:VERSION (VERSION a number, or -1 for the latest); repeat it for each.",
            AllowMultipleArgumentsPerToken = false,
        };
        var command = new Command("register", "Registers a schema under a subject; prints its id.") { url, subject, file, type, references };
        command.SetAction(async (parsed, token) =>
        {
            var f = parsed.GetValue(file)!;
            if (!f.Exists)
            {
                error.WriteLine($"{f.FullName}: no such file");
                return Unreadable;
            }
            var body = new JsonObject { ["schema"] = await File.ReadAllTextAsync(f.FullName, token) };
            if (parsed.GetValue(type) == "json") body["schemaType"] = "JSON";
            var named = new JsonArray();
            foreach (var reference in parsed.GetValue(references) ?? [])
            {
                if (ParseReference(reference) is not { } r)
                {
                    error.WriteLine($"--reference: '{reference}' is not NAME=SUBJECT:VERSION (VERSION a number, or -1 for the latest)");
                    return Unreadable;
                }
                named.Add(new JsonObject { ["name"] = r.Name, ["subject"] = r.Subject, ["version"] = r.Version });
            }
            if (named.Count > 0) body["references"] = named;
            return await CallAsync(parsed.GetValue(url)!, HttpMethod.Post, $"subjects/{Uri.EscapeDataString(parsed.GetValue(subject)!)}/versions", body, r => $"id {r["id"]}", output, error, token);
        });
        return command;
    }

    private static Command List(Option<string> url, TextWriter output, TextWriter error)
    {
        var subject = new Option<string?>("--subject") { Description = "A subject: list its versions (without: list the subjects)." };
        var command = new Command("list", "Lists the registry's subjects, or a subject's versions.") { url, subject };
        command.SetAction(async (parsed, token) =>
        {
            var s = parsed.GetValue(subject);
            var path = s is null ? "subjects" : $"subjects/{Uri.EscapeDataString(s)}/versions";
            return await CallAsync(parsed.GetValue(url)!, HttpMethod.Get, path, null, r => string.Join(Environment.NewLine, r.AsArray().Select(n => n!.ToString())), output, error, token);
        });
        return command;
    }

    private static Command Show(Option<string> url, TextWriter output, TextWriter error)
    {
        var subject = new Option<string?>("--subject") { Description = "The subject (with --version)." };
        var version = new Option<string>("--version") { Description = "A version number, or latest.", DefaultValueFactory = _ => "latest" };
        var id = new Option<int?>("--id") { Description = "A schema's global id (instead of --subject)." };
        var command = new Command("show", "Prints a schema: by subject and version, or by id.") { url, subject, version, id };
        command.SetAction(async (parsed, token) =>
        {
            if (parsed.GetValue(id) is { } byId)
                return await CallAsync(parsed.GetValue(url)!, HttpMethod.Get, $"schemas/ids/{byId}", null, r => $"id {byId}{Described(r)}", output, error, token);
            if (parsed.GetValue(subject) is not { } s)
            {
                error.WriteLine("show needs --subject or --id");
                return Unreadable;
            }
            return await CallAsync(parsed.GetValue(url)!, HttpMethod.Get, $"subjects/{Uri.EscapeDataString(s)}/versions/{Uri.EscapeDataString(parsed.GetValue(version)!)}", null,
                r => $"{r["subject"]} version {r["version"]}, id {r["id"]}{Described(r)}", output, error, token);
        });
        return command;
    }

    /// <summary>A registry's schema as <c>show</c> prints it: its type when not Avro, the schemas it
    /// refers to, then its text.</summary>
    private static string Described(JsonNode schema)
    {
        var text = new System.Text.StringBuilder();
        if (schema["schemaType"]?.GetValue<string>() is { } type && type != "AVRO") text.Append($", {type}");
        foreach (var reference in schema["references"]?.AsArray() ?? [])
            text.Append($"{Environment.NewLine}refers to {reference!["name"]} = {reference["subject"]} version {reference["version"]}");
        return text.Append(Environment.NewLine).Append(schema["schema"]).ToString();
    }

    /// <summary>One call to a Confluent-compatible registry (through <see cref="HttpSchemaRegistry"/>):
    /// its answer described, or its error code and message.</summary>
    private static async Task<int> CallAsync(string url, HttpMethod method, string path, JsonObject? body, Func<JsonNode, string> describe, TextWriter output, TextWriter error, CancellationToken token)
    {
        try
        {
            using var registry = new HttpSchemaRegistry(url);
            output.WriteLine(describe(await registry.CallAsync(method, path, body, token)));
            return 0;
        }
        catch (SchemaRegistryException e)
        {
            error.WriteLine($"{e.ErrorCode}: {e.Message}");
            return Incompatible;
        }
        catch (Exception e) when (e is HttpRequestException or ArgumentException or TaskCanceledException)
        {
            error.WriteLine($"{url}: {e.Message}");
            return Unreadable;
        }
    }

    /// <summary>NAME=SUBJECT:VERSION, split at the first '=' and the last ':' (names and subjects may hold either).</summary>
    private static (string Name, string Subject, int Version)? ParseReference(string text)
    {
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        var colon = text.LastIndexOf(':');
        if (equals <= 0 || colon <= equals + 1) return null;
        if (!int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var version) || (version < 1 && version != -1)) return null;
        return (text[..equals], text[(equals + 1)..colon], version);
    }

    private static string Against(CompatibilityLevel level, FileInfo[] files) =>
        level == CompatibilityLevel.None ? "nothing" : level.IsTransitive() ? string.Join(", ", files.Select(f => f.Name)) : files[^1].Name;

    private static string Read(FileInfo file)
    {
        if (!file.Exists) throw new FileNotFoundException($"{file.FullName}: no such file");
        return File.ReadAllText(file.FullName);
    }
}
