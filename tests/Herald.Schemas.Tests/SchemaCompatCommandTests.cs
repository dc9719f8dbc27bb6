using Herald.Cli;

namespace Herald.Schemas.Tests;

/// <summary><c>herald schema compat</c>: exit code 0 when compatible, 1 when not (each breaking
/// difference printed with its path), 2 when a schema cannot be read (the parse error and where).</summary>
public sealed class SchemaCompatCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("herald-compat-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string File(string name, string text)
    {
        var path = Path.Combine(_dir.FullName, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = HeraldCommand.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private const string V1 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"}]}""";
    private const string V2 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"},{"name":"currency","type":"string","default":"USD"}]}""";
    private const string V3 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"currency","type":"string"}]}""";

    [Fact]
    public void A_compatible_schema_exits_0()
    {
        var (code, output, _) = Run("schema", "compat", "--type", "avro", "--level", "BACKWARD", "--schema", File("v2.avsc", V2), "--against", File("v1.avsc", V1));
        Assert.Equal(0, code);
        Assert.Contains("compatible (BACKWARD, against v1.avsc)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void An_incompatible_schema_exits_1_printing_each_breaking_path()
    {
        var v1 = File("v1.avsc", V1);
        var v2 = File("v2.avsc", V2);
        var v3 = File("v3.avsc", V3);
        Assert.Equal(0, Run("schema", "compat", "--type", "avro", "--level", "BACKWARD", "--schema", v3, "--against", v1, "--against", v2).Code); // the newest only
        var (code, output, _) = Run("schema", "compat", "--type", "avro", "--level", "backward_transitive", "--schema", v3, "--against", v1, "--against", v2);
        Assert.Equal(1, code);
        Assert.Contains("OrderPlaced.currency: field added without default (new cannot read v1.avsc)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("v2.avsc", output, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreadable_schema_exits_2_with_the_parse_error_and_its_position()
    {
        var (code, _, error) = Run("schema", "compat", "--type", "avro", "--level", "FULL", "--schema", File("bad.avsc", """{"type":"record","name":"X","fields":[{"name":"a","type":"int"}"""), "--against", File("v1.avsc", V1));
        Assert.Equal(2, code);
        Assert.Contains("bad.avsc", error, StringComparison.Ordinal);
        Assert.Contains("position", error, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(2, Run("schema", "compat", "--type", "avro", "--level", "SIDEWAYS", "--schema", File("v2.avsc", V2), "--against", File("v1.avsc", V1)).Code);
        var missing = Run("schema", "compat", "--type", "avro", "--level", "FULL", "--schema", Path.Combine(_dir.FullName, "nope.avsc"), "--against", File("v1.avsc", V1));
        Assert.Equal(2, missing.Code);
        Assert.Contains("nope.avsc", missing.Error, StringComparison.Ordinal);
        Assert.Equal(2, Run("schema", "compat", "--level", "FULL").Code); // options missing
    }
}
