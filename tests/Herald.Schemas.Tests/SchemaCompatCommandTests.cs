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

    private const string J1 = """{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}""";
    private const string J2 = """{"type":"object","properties":{"id":{"type":"string"},"currency":{"type":"string"}},"additionalProperties":false}""";
    private const string J3 = """{"type":"object","properties":{"id":{"type":"string"},"currency":{"type":"string"}},"required":["currency"],"additionalProperties":false}""";

    [Fact]
    public void Json_schemas_are_checked_with_the_same_exit_codes_and_paths()
    {
        var j1 = File("v1.json", J1);
        var j2 = File("v2.json", J2);
        var j3 = File("v3.json", J3);
        var compatible = Run("schema", "compat", "--type", "json", "--level", "BACKWARD", "--schema", j2, "--against", j1);
        Assert.Equal(0, compatible.Code);
        Assert.Contains("compatible (BACKWARD, against v1.json)", compatible.Output, StringComparison.Ordinal);

        var forward = Run("schema", "compat", "--type", "json", "--level", "FORWARD", "--schema", j2, "--against", j1);
        Assert.Equal(1, forward.Code);
        Assert.Contains("#/properties/currency: property currency added to a closed content model (cannot read new with v1.json)", forward.Output, StringComparison.Ordinal);

        Assert.Equal(1, Run("schema", "compat", "--type", "json", "--level", "BACKWARD", "--schema", j3, "--against", j1, "--against", j2).Code);
        var transitive = Run("schema", "compat", "--type", "json", "--level", "FULL_TRANSITIVE", "--schema", j3, "--against", j1, "--against", j2);
        Assert.Equal(1, transitive.Code);
        Assert.Contains("#/properties/currency: required property currency added (new cannot read v1.json)", transitive.Output, StringComparison.Ordinal);
        Assert.Contains("(cannot read new with v1.json)", transitive.Output, StringComparison.Ordinal);
        Assert.Contains("(new cannot read v2.json)", transitive.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreadable_json_schema_exits_2_with_the_error_and_where()
    {
        var (code, _, error) = Run("schema", "compat", "--type", "json", "--level", "FULL", "--schema", File("bad.json", "{\n  \"type\": \"object\"\n  \"properties\": {}\n}"), "--against", File("v1.json", J1));
        Assert.Equal(2, code);
        Assert.Contains("bad.json is not valid JSON at line 3, byte position 3", error, StringComparison.Ordinal);

        var invalid = Run("schema", "compat", "--type", "json", "--level", "FULL", "--schema", File("v2.json", J2), "--against", File("old.json", """{"properties":{"id":{"type":"text"}}}"""));
        Assert.Equal(2, invalid.Code);
        Assert.Contains("old.json is not ", invalid.Error, StringComparison.Ordinal);
        Assert.Contains("#/properties/id/type: \"text\" is not a type", invalid.Error, StringComparison.Ordinal);

        Assert.Equal(2, Run("schema", "compat", "--type", "xml", "--level", "FULL", "--schema", File("v2.json", J2), "--against", File("v1.json", J1)).Code);
        Assert.Equal(2, Run("schema", "compat", "--type", "avro", "--level", "FULL", "--schema", File("v2.json", J2), "--against", File("v1.json", J1)).Code); // JSON Schema is not Avro
    }
}
