using System.CommandLine;
using Herald.Schemas.Compatibility;

namespace Herald.Cli;

/// <summary>The herald command line: <c>herald schema compat</c> so far.</summary>
internal static class HeraldCommand
{
    /// <summary>Exit codes of <c>herald schema compat</c>.</summary>
    internal const int Compatible = 0, Incompatible = 1, Unreadable = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("Herald: event-driven systems on .NET.");
        var schema = new Command("schema", "Schemas: compatibility between versions.");
        schema.Subcommands.Add(Compat(output, error));
        root.Subcommands.Add(schema);
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
        var type = new Option<string>("--type") { Description = "The schemas' type: avro.", Required = true };
        type.AcceptOnlyFromAmong("avro");
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
                var newParsed = SchemaCompatibility.ParseAvro(newText, parsed.GetValue(newSchema)!.Name);
                var olderParsed = olderTexts.Select((t, i) => SchemaCompatibility.ParseAvro(t, files[i].Name)).ToList();
                result = SchemaCompatibility.CheckAvro(newParsed, olderParsed, parsedLevel);
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

    private static string Against(CompatibilityLevel level, FileInfo[] files) =>
        level == CompatibilityLevel.None ? "nothing" : level.IsTransitive() ? string.Join(", ", files.Select(f => f.Name)) : files[^1].Name;

    private static string Read(FileInfo file)
    {
        if (!file.Exists) throw new FileNotFoundException($"{file.FullName}: no such file");
        return File.ReadAllText(file.FullName);
    }
}
