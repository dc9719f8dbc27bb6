using CsCheck;
using Herald.Schemas.Compatibility;

namespace Herald.Schemas.Tests;

/// <summary>The levels, as Confluent's registry defines them, and their laws.</summary>
public class CompatibilityLevelTests
{
    private const string V1 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}""";
    private const string V2 = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"currency","type":"string","default":"USD"}]}""";
    private const string CurrencyWithoutDefault = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"currency","type":"string"}]}""";
    private const string OnlyCurrency = """{"type":"record","name":"OrderPlaced","fields":[{"name":"currency","type":"string"}]}""";

    [Fact]
    public void A_field_added_without_default_breaks_backward_with_its_path()
    {
        var result = SchemaCompatibility.CheckAvro(CurrencyWithoutDefault, [V1], CompatibilityLevel.Backward);
        var difference = Assert.Single(result.Differences);
        Assert.Equal("OrderPlaced.currency", difference.Path);
        Assert.Equal("field added without default", difference.Message);
        Assert.Equal("OrderPlaced.currency: field added without default (the new schema cannot read data written with version 1)", difference.ToString());
        Assert.True(SchemaCompatibility.CheckAvro(V2, [V1], CompatibilityLevel.Backward).IsCompatible);
    }

    [Fact]
    public void Non_transitive_levels_check_the_newest_older_version_only_and_transitive_ones_all()
    {
        // Reads version 2 (which has currency), not version 1 (which has not, and no default here).
        Assert.True(SchemaCompatibility.CheckAvro(OnlyCurrency, [V1, V2], CompatibilityLevel.Backward).IsCompatible);
        var transitive = SchemaCompatibility.CheckAvro(OnlyCurrency, [V1, V2], CompatibilityLevel.BackwardTransitive);
        var difference = Assert.Single(transitive.Differences);
        Assert.Equal((1, "OrderPlaced.currency"), (difference.Version, difference.Path));
    }

    [Fact]
    public void Forward_is_the_older_schema_reading_the_new_ones_data()
    {
        // Version 1 has no default for amount: a new schema without it cannot be read by version 1.
        const string withoutAmount = """{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"}]}""";
        Assert.True(SchemaCompatibility.CheckAvro(withoutAmount, [V1], CompatibilityLevel.Backward).IsCompatible);
        var forward = SchemaCompatibility.CheckAvro(withoutAmount, [V1], CompatibilityLevel.Forward);
        var difference = Assert.Single(forward.Differences);
        Assert.Equal((CompatibilityDirection.Forward, "OrderPlaced.amount", "field removed, and the older schema has no default for it"), (difference.Direction, difference.Path, difference.Message));
        Assert.Equal(2, SchemaCompatibility.CheckAvro(CurrencyWithoutDefault, [OnlyCurrency], CompatibilityLevel.Full).Differences.Count);
        Assert.True(SchemaCompatibility.CheckAvro(CurrencyWithoutDefault, [OnlyCurrency], CompatibilityLevel.None).IsCompatible);
    }

    [Fact]
    public void Promotions_go_one_way_so_full_refuses_them()
    {
        const string intAmount = """{"type":"record","name":"M","fields":[{"name":"n","type":"int"}]}""";
        const string longAmount = """{"type":"record","name":"M","fields":[{"name":"n","type":"long"}]}""";
        Assert.True(SchemaCompatibility.CheckAvro(longAmount, [intAmount], CompatibilityLevel.Backward).IsCompatible);
        var full = SchemaCompatibility.CheckAvro(longAmount, [intAmount], CompatibilityLevel.Full);
        var difference = Assert.Single(full.Differences);
        Assert.Equal("type changed from int to long (int cannot read long)", difference.Message);
    }

    [Fact]
    public void An_invalid_schema_is_an_error_naming_which_and_where()
    {
        var e = Assert.Throws<InvalidSchemaException>(() => SchemaCompatibility.CheckAvro(V1, ["""{"type":"record","name":"X","fields":[{"name":"a"""], CompatibilityLevel.Backward));
        Assert.Contains("version 1", e.Message, StringComparison.Ordinal);
        Assert.Contains("position", e.Message, StringComparison.OrdinalIgnoreCase);
        var unknownType = Assert.Throws<InvalidSchemaException>(() => SchemaCompatibility.ParseAvro("""{"type":"record","name":"X","fields":[{"name":"a","type":"integer"}]}""", "the new schema"));
        Assert.Contains("the new schema", unknownType.Message, StringComparison.Ordinal);
        Assert.Contains("integer", unknownType.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidSchemaException>(() => SchemaCompatibility.ParseAvro("""{"type":"nope"}"""));
    }

    [Fact]
    public void Every_level_has_its_Confluent_name()
    {
        foreach (var level in Enum.GetValues<CompatibilityLevel>())
        {
            Assert.True(CompatibilityLevels.TryParse(level.ToConfluentName().ToLowerInvariant(), out var parsed));
            Assert.Equal(level, parsed);
        }
        Assert.False(CompatibilityLevels.TryParse("SIDEWAYS", out _));
    }

    // Random record schemas over a small pool of field names and types, so that two of them
    // often share fields and differ in a few: promotions, defaults, unions, enums, nesting.
    private static readonly string[] FieldNames = ["a", "b", "c", "d"];

    private static Gen<string> GenType(int depth, string path)
    {
        var primitive = Gen.OneOf(new[] { "\"int\"", "\"long\"", "\"float\"", "\"double\"", "\"string\"", "\"bytes\"", "\"boolean\"" }.Select(Gen.Const).ToArray());
        var enumType = Gen.Int[1, 7].Select(mask => $$"""{"type":"enum","name":"E{{path}}","symbols":[{{string.Join(",", new[] { "A", "B", "C" }.Where((_, i) => (mask & (1 << i)) != 0).Select(s => $"\"{s}\""))}}]}""");
        // Named types are named by where they are, so that one schema never defines a name twice
        // and two schemas name the same place alike.
        if (depth == 0) return Gen.Frequency((6, primitive), (1, enumType));
        return Gen.Frequency(
            (6, primitive),
            (1, enumType),
            (1, GenType(depth - 1, path + "_i").Select(t => $$"""{"type":"array","items":{{t}}}""")),
            (1, GenType(depth - 1, path + "_v").Select(t => $$"""{"type":"map","values":{{t}}}""")),
            (2, primitive.Select(t => $"[\"null\",{t}]")),
            (1, GenRecord("Inner" + path, depth - 1)));
    }

    private static Gen<string> GenField(string name, int depth, string path) =>
        Gen.Select(GenType(depth, path + "_" + name), Gen.Bool).Select((type, defaulted) =>
        {
            var fallback = !defaulted ? null : type switch
            {
                "\"int\"" or "\"long\"" or "\"float\"" or "\"double\"" => "0",
                "\"string\"" or "\"bytes\"" => "\"\"",
                "\"boolean\"" => "false",
                _ when type.StartsWith("[\"null\"", StringComparison.Ordinal) => "null",
                _ => null,
            };
            return $$"""{"name":"{{name}}","type":{{type}}{{(fallback is null ? "" : ",\"default\":" + fallback)}}}""";
        });

    private static Gen<string> GenRecord(string name, int depth) =>
        Gen.Int[1, 15].SelectMany(mask =>
        {
            var names = FieldNames.Where((_, i) => (mask & (1 << i)) != 0).ToArray();
            var fields = names.Aggregate(Gen.Const(Array.Empty<string>()), (so, n) => so.SelectMany(got => GenField(n, depth, name).Select(f => got.Append(f).ToArray())));
            return fields.Select(all => $$"""{"type":"record","name":"{{name}}","fields":[{{string.Join(",", all)}}]}""");
        });

    private static readonly Gen<string> GenSchema = GenRecord("R", 2);

    [Fact]
    public void A_schema_is_compatible_with_itself_at_every_level() =>
        GenSchema.Sample(schema =>
        {
            foreach (var level in Enum.GetValues<CompatibilityLevel>())
                Assert.True(SchemaCompatibility.CheckAvro(schema, [schema], level).IsCompatible, $"{level}: {schema}");
        }, iter: 300);

    [Fact]
    public void Full_is_backward_and_forward() =>
        Gen.Select(GenSchema, GenSchema).Sample((a, b) =>
        {
            var backward = SchemaCompatibility.CheckAvro(a, [b], CompatibilityLevel.Backward).IsCompatible;
            var forward = SchemaCompatibility.CheckAvro(a, [b], CompatibilityLevel.Forward).IsCompatible;
            Assert.Equal(backward && forward, SchemaCompatibility.CheckAvro(a, [b], CompatibilityLevel.Full).IsCompatible);
        }, iter: 500);

    [Fact]
    public void Transitive_levels_check_every_older_version() =>
        Gen.Select(GenSchema, GenSchema.Array[1, 4]).Sample((schema, older) =>
        {
            foreach (var (level, single) in new[] { (CompatibilityLevel.BackwardTransitive, CompatibilityLevel.Backward), (CompatibilityLevel.ForwardTransitive, CompatibilityLevel.Forward), (CompatibilityLevel.FullTransitive, CompatibilityLevel.Full) })
            {
                var each = older.All(o => SchemaCompatibility.CheckAvro(schema, [o], single).IsCompatible);
                Assert.Equal(each, SchemaCompatibility.CheckAvro(schema, older, level).IsCompatible);
                // Non-transitive: the newest older version decides.
                Assert.Equal(SchemaCompatibility.CheckAvro(schema, [older[^1]], single).IsCompatible, SchemaCompatibility.CheckAvro(schema, older, single).IsCompatible);
            }
        }, iter: 300);

    [Fact]
    public void Random_pairs_do_break_sometimes_so_the_laws_above_are_not_vacuous()
    {
        var broke = 0;
        var held = 0;
        Gen.Select(GenSchema, GenSchema).Sample((a, b) =>
        {
            if (SchemaCompatibility.CheckAvro(a, [b], CompatibilityLevel.Backward).IsCompatible) Interlocked.Increment(ref held);
            else Interlocked.Increment(ref broke);
        }, iter: 300, threads: 1);
        Assert.True(broke > 30 && held > 5, $"{broke} broke and {held} held of 300");
    }
}
