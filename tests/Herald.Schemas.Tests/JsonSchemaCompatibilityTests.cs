using CsCheck;
using Herald.Schemas.Compatibility;

namespace Herald.Schemas.Tests;

/// <summary>JSON Schema compatibility as Confluent's registry decides it (STRICT), each rule
/// both ways: backward (the new schema accepts what the older one did) and forward (the older
/// schema accepts what the new one does), with the path and the message in terms of the change
/// from the older schema to the new one.</summary>
public class JsonSchemaCompatibilityTests
{
    private static string[] Differences(string newer, string older, CompatibilityLevel level) =>
        SchemaCompatibility.CheckJson(newer, [older], level).Differences.Select(d => $"{d.Path}: {d.Message}").ToArray();

    /// <summary>Description, older schema, new schema, what breaks backward, what breaks forward.</summary>
    public static TheoryData<string, string, string, string[], string[]> Rules => new()
    {
        // Types.
        { "integer widens to number", """{"type":"integer"}""", """{"type":"number"}""", [], ["#/: type widened from [integer] to [number]"] },
        { "number narrows to integer", """{"type":"number"}""", """{"type":"integer"}""", ["#/: type narrowed from [number] to [integer]"], [] },
        { "a type changes", """{"type":"string"}""", """{"type":"number"}""", ["#/: type changed from [string] to [number]"], ["#/: type changed from [string] to [number]"] },
        { "a type array gains a type", """{"type":"string"}""", """{"type":["string","null"]}""", [], ["#/: type widened from [string] to [string, null]"] },
        { "a type array's types are compared type by type", """{"type":["string","null"],"maxLength":20}""", """{"type":["string","null"],"maxLength":10}""", ["#/maxLength: maxLength decreased from 20 to 10"], [] },
        { "anything becomes {}", """{"type":"string"}""", """{}""", [], ["#/: type widened from [string] to [any]"] },
        { "false becomes anything", """false""", """{"type":"string"}""", [], ["#/: type widened from [nothing] to [string]"] },
        { "annotations change", """{"type":"string","title":"a"}""", """{"type":"string","title":"b","description":"c","default":"d"}""", [], [] },

        // Strings.
        { "maxLength decreases", """{"type":"string","maxLength":20}""", """{"type":"string","maxLength":10}""", ["#/maxLength: maxLength decreased from 20 to 10"], [] },
        { "maxLength is added", """{"type":"string"}""", """{"type":"string","maxLength":10}""", ["#/maxLength: maxLength 10 added"], [] },
        { "minLength increases", """{"type":"string","minLength":1}""", """{"type":"string","minLength":3}""", ["#/minLength: minLength increased from 1 to 3"], [] },
        { "pattern is added", """{"type":"string"}""", """{"type":"string","pattern":"^a"}""", ["#/pattern: pattern \"^a\" added"], [] },
        { "pattern changes", """{"type":"string","pattern":"^a"}""", """{"type":"string","pattern":"^b"}""", ["#/pattern: pattern changed from \"^a\" to \"^b\""], ["#/pattern: pattern changed from \"^a\" to \"^b\""] },

        // Numbers.
        { "maximum decreases", """{"type":"number","maximum":100}""", """{"type":"number","maximum":50}""", ["#/maximum: maximum decreased from 100 to 50"], [] },
        { "minimum is added", """{"type":"number"}""", """{"type":"number","minimum":0}""", ["#/minimum: minimum 0 added"], [] },
        { "exclusiveMaximum decreases", """{"type":"number","exclusiveMaximum":10}""", """{"type":"number","exclusiveMaximum":5}""", ["#/exclusiveMaximum: exclusiveMaximum decreased from 10 to 5"], [] },
        { "exclusiveMinimum increases", """{"type":"number","exclusiveMinimum":0}""", """{"type":"number","exclusiveMinimum":1.5}""", ["#/exclusiveMinimum: exclusiveMinimum increased from 0 to 1.5"], [] },
        { "multipleOf becomes a multiple of itself", """{"type":"integer","multipleOf":2}""", """{"type":"integer","multipleOf":4}""", ["#/multipleOf: multipleOf changed from 2 to 4"], [] },
        { "multipleOf changes", """{"type":"integer","multipleOf":2}""", """{"type":"integer","multipleOf":3}""", ["#/multipleOf: multipleOf changed from 2 to 3"], ["#/multipleOf: multipleOf changed from 2 to 3"] },
        { "multipleOf equal in value", """{"type":"number","multipleOf":0.5}""", """{"type":"number","multipleOf":0.50}""", [], [] },

        // Objects: required.
        { "a property is made required", """{"type":"object","properties":{"currency":{"type":"string"}}}""", """{"type":"object","properties":{"currency":{"type":"string"}},"required":["currency"]}""", ["#/required/currency: property currency made required"], [] },
        { "a property with a default is made required", """{"type":"object","properties":{"currency":{"type":"string"}}}""", """{"type":"object","properties":{"currency":{"type":"string","default":"USD"}},"required":["currency"]}""", [], [] },
        { "an undeclared name is made required", """{"type":"object"}""", """{"type":"object","required":["id"]}""", ["#/required/id: property id made required"], [] },

        // Objects: open content model.
        { "a required property is added to an open model", """{"type":"object","properties":{"id":{"type":"string"}}}""", """{"type":"object","properties":{"id":{"type":"string"},"currency":{"type":"string"}},"required":["currency"]}""", ["#/properties/currency: required property currency added"], [] },
        { "an optional property is added to an open model", """{"type":"object","properties":{"id":{"type":"string"}}}""", """{"type":"object","properties":{"id":{"type":"string"},"currency":{"type":"string"}}}""", ["#/properties/currency: property currency added to an open content model (the older schema allows any value for it)"], [] },
        { "a property with the empty schema is added to an open model", """{"type":"object"}""", """{"type":"object","properties":{"note":{}}}""", [], [] },

        // Objects: closed content model.
        { "a property is added to a closed model", """{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}""", """{"type":"object","properties":{"id":{"type":"string"},"currency":{"type":"string"}},"additionalProperties":false}""", [], ["#/properties/currency: property currency added to a closed content model"] },
        { "a required property is added to a closed model", """{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}""", """{"type":"object","properties":{"id":{"type":"string"},"currency":{"type":"string"}},"required":["currency"],"additionalProperties":false}""", ["#/properties/currency: required property currency added"], ["#/properties/currency: property currency added to a closed content model"] },
        { "a property false is removed from a closed model", """{"type":"object","properties":{"id":{"type":"string"},"legacy":false},"additionalProperties":false}""", """{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}""", [], [] },

        // Objects: partially open content model.
        { "a property covered by patternProperties is added", """{"type":"object","patternProperties":{"^I_":{"type":"integer"}}}""", """{"type":"object","patternProperties":{"^I_":{"type":"integer"}},"properties":{"I_123":{"type":"number"}}}""", [], ["#/properties/I_123: type widened from [integer] to [number]", "#/properties/I_123: property I_123 added, and the older schema's partially open content model does not accept its new values"] },
        { "a property not covered by additionalProperties is added", """{"type":"object","additionalProperties":{"type":"string"}}""", """{"type":"object","additionalProperties":{"type":"string"},"properties":{"n":{"type":"number"}}}""", ["#/properties/n: type changed from [string] to [number]", "#/properties/n: property n added, and the older schema's partially open content model allows other values for it"], ["#/properties/n: type changed from [string] to [number]", "#/properties/n: property n added, and the older schema's partially open content model does not accept its new values"] },

        // Objects: additionalProperties, unevaluatedProperties, bounds, dependencies.
        { "additionalProperties closes", """{"type":"object"}""", """{"type":"object","additionalProperties":false}""", ["#/additionalProperties: additionalProperties changed from true (or absent) to false"], [] },
        { "additionalProperties narrows to a schema", """{"type":"object"}""", """{"type":"object","additionalProperties":{"type":"string"}}""", ["#/additionalProperties: additionalProperties changed from true (or absent) to a schema"], [] },
        { "additionalProperties' schema changes", """{"type":"object","additionalProperties":{"type":"string"}}""", """{"type":"object","additionalProperties":{"type":"boolean"}}""", ["#/additionalProperties: type changed from [string] to [boolean]"], ["#/additionalProperties: type changed from [string] to [boolean]"] },
        { "unevaluatedProperties closes", """{"type":"object"}""", """{"type":"object","unevaluatedProperties":false}""", ["#/unevaluatedProperties: unevaluatedProperties changed from absent to false"], [] },
        { "maxProperties decreases", """{"type":"object","maxProperties":5}""", """{"type":"object","maxProperties":3}""", ["#/maxProperties: maxProperties decreased from 5 to 3"], [] },
        { "minProperties increases", """{"type":"object","minProperties":1}""", """{"type":"object","minProperties":2}""", ["#/minProperties: minProperties increased from 1 to 2"], [] },
        { "a dependency array is added", """{"type":"object","properties":{"a":{},"b":{}}}""", """{"type":"object","properties":{"a":{},"b":{}},"dependencies":{"a":["b"]}}""", ["#/dependencies/a: dependencies of a added: [b]"], [] },
        { "dependentRequired gains a name", """{"type":"object","dependentRequired":{"a":["b"]}}""", """{"type":"object","dependentRequired":{"a":["b","c"]}}""", ["#/dependentRequired/a: dependentRequired of a changed from [b] to [b, c]"], [] },
        { "a dependent schema is added", """{"type":"object"}""", """{"type":"object","dependentSchemas":{"a":{"required":["b"]}}}""", ["#/dependentSchemas/a: dependentSchemas schema of a added"], [] },

        // Nested properties.
        { "a nested property's type changes", """{"type":"object","properties":{"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"}}}}}}""", """{"type":"object","properties":{"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"integer"}}}}}}""", ["#/properties/lines/items/properties/sku: type changed from [string] to [integer]"], ["#/properties/lines/items/properties/sku: type changed from [string] to [integer]"] },

        // Enums and const.
        { "an enum gains a value", """{"enum":["red"]}""", """{"enum":["red","blue"]}""", [], ["#/enum: enum values added: \"blue\""] },
        { "an enum beside a type loses a value", """{"type":"string","enum":["red","blue"]}""", """{"type":"string","enum":["red"]}""", ["#/enum: enum values removed: \"blue\""], [] },
        { "an enum's values change", """{"enum":["red",1]}""", """{"enum":["red",2]}""", ["#/enum: enum values changed: 1 removed, 2 added"], ["#/enum: enum values changed: 1 removed, 2 added"] },
        { "an enum is added beside a type", """{"type":"string"}""", """{"type":"string","enum":["red"]}""", ["#/enum: enum added"], [] },
        { "const changes", """{"properties":{"foo":{"const":"red"}}}""", """{"properties":{"foo":{"const":"blue"}}}""", ["#/properties/foo/const: const changed from \"red\" to \"blue\""], ["#/properties/foo/const: const changed from \"red\" to \"blue\""] },

        // Arrays.
        { "the items' type changes", """{"type":"array","items":{"type":"string"}}""", """{"type":"array","items":{"type":"integer"}}""", ["#/items: type changed from [string] to [integer]"], ["#/items: type changed from [string] to [integer]"] },
        { "items are added", """{"type":"array"}""", """{"type":"array","items":{"type":"string"}}""", ["#/items: items schema added"], [] },
        { "a tuple item is added to an open model", """{"type":"array","items":[{"type":"string"}]}""", """{"type":"array","items":[{"type":"string"},{"type":"integer"}]}""", ["#/items/1: tuple item 1 added to an open content model (the older schema allows any value there)"], [] },
        { "a tuple item is added to a closed model", """{"type":"array","items":[{"type":"string"}],"additionalItems":false}""", """{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}""", [], ["#/items/1: tuple item 1 added to a closed content model"] },
        { "a prefixItems item is added to a closed model", """{"type":"array","prefixItems":[{"type":"string"}],"items":false}""", """{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}""", [], ["#/prefixItems/1: tuple item 1 added to a closed content model"] },
        { "a tuple item is covered by additionalItems", """{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":"number"}}""", """{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":{"type":"number"}}""", ["#/items/1: type narrowed from [number] to [integer]", "#/items/1: tuple item 1 added, and the older schema's partially open content model allows other values there"], [] },
        { "additionalItems closes", """{"type":"array","items":[{"type":"string"}]}""", """{"type":"array","items":[{"type":"string"}],"additionalItems":false}""", ["#/additionalItems: additionalItems changed from true (or absent) to false"], [] },
        { "uniqueItems is added", """{"type":"array"}""", """{"type":"array","uniqueItems":true}""", ["#/uniqueItems: uniqueItems added"], [] },
        { "maxItems decreases", """{"type":"array","maxItems":5}""", """{"type":"array","maxItems":3}""", ["#/maxItems: maxItems decreased from 5 to 3"], [] },
        { "minItems increases", """{"type":"array","minItems":0}""", """{"type":"array","minItems":1}""", ["#/minItems: minItems increased from 0 to 1"], [] },
        { "minContains increases", """{"type":"array","contains":{"type":"string"},"minContains":1}""", """{"type":"array","contains":{"type":"string"},"minContains":2}""", ["#/minContains: minContains increased from 1 to 2"], [] },

        // Combined schemas.
        { "oneOf gains a branch", """{"oneOf":[{"type":"string"}]}""", """{"oneOf":[{"type":"string"},{"type":"number"}]}""", [], ["#/: oneOf branch added (1 → 2 branches)"] },
        { "anyOf loses a branch", """{"anyOf":[{"type":"string"},{"type":"number"}]}""", """{"anyOf":[{"type":"string"}]}""", ["#/: anyOf branch removed (2 → 1 branches)"], [] },
        { "allOf gains a branch", """{"allOf":[{"minLength":1}]}""", """{"allOf":[{"minLength":1},{"maxLength":5}]}""", ["#/: allOf branch added (1 → 2 branches)"], [] },
        { "oneOf becomes allOf", """{"oneOf":[{"type":"string"},{"type":"integer"}]}""", """{"allOf":[{"type":"string"}]}""", ["#/: oneOf changed to allOf"], [] },
        { "oneOf becomes anyOf", """{"oneOf":[{"type":"string"},{"type":"integer"}]}""", """{"anyOf":[{"type":"string"},{"type":"integer"}]}""", [], ["#/: oneOf changed to anyOf"] },
        { "a oneOf branch changes", """{"oneOf":[{"type":"string"},{"type":"null"}]}""", """{"oneOf":[{"type":"number"},{"type":"null"}]}""", ["#/: oneOf changed: no branch of the new schema accepts branch 0 of the older schema"], ["#/: oneOf changed: no branch of the older schema accepts branch 0 of the new schema"] },
        { "a schema becomes a oneOf with it", """{"type":"string","maxLength":3}""", """{"oneOf":[{"type":"number"},{"type":"string"}]}""", [], ["#/: the older schema's string does not accept the new schema's oneOf"] },
        { "duplicate branches are one", """{"oneOf":[{"type":"string"},{"type":"string"}]}""", """{"oneOf":[{"type":"string"}]}""", [], [] },
        { "not's schema narrows", """{"not":{"type":"number"}}""", """{"not":{"type":"integer"}}""", [], ["#/not: not changed: the older schema excludes values the new schema accepts"] },

        // References.
        { "a referred definition changes", """{"type":"array","items":{"$ref":"#/definitions/line"},"definitions":{"line":{"type":"string"}}}""", """{"type":"array","items":{"$ref":"#/definitions/line"},"definitions":{"line":{"type":"number"}}}""", ["#/items: type changed from [string] to [number]"], ["#/items: type changed from [string] to [number]"] },
        { "a schema moves into $defs", """{"type":"string"}""", """{"$ref":"#/$defs/s","$defs":{"s":{"type":"string"}}}""", [], [] },
        { "a recursive schema changes", """{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}}}""", """{"type":"object","properties":{"name":{"type":"string","maxLength":10},"children":{"type":"array","items":{"$ref":"#"}}}}""", ["#/properties/name/maxLength: maxLength 10 added"], [] },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Each_rule_breaks_one_way_or_both_with_its_path_and_message(string rule, string older, string newer, string[] backward, string[] forward)
    {
        Assert.True(rule.Length > 0);
        Assert.Equal(backward, Differences(newer, older, CompatibilityLevel.Backward));
        Assert.Equal(forward, Differences(newer, older, CompatibilityLevel.Forward));
        Assert.Equal(backward.Concat(forward).ToArray(), Differences(newer, older, CompatibilityLevel.Full));
        Assert.Empty(Differences(newer, older, CompatibilityLevel.None));
    }

    [Fact]
    public void Every_level_checks_its_versions_in_its_directions()
    {
        const string v1 = """{"type":"string","maxLength":10}""";
        const string v2 = """{"type":"string","maxLength":30}""";
        const string newer = """{"type":"string","maxLength":20}""";
        (int, CompatibilityDirection, string, string)[] Check(CompatibilityLevel level) =>
            SchemaCompatibility.CheckJson(newer, [v1, v2], level).Differences.Select(d => (d.Version, d.Direction, d.Path, d.Message)).ToArray();
        var backward = (2, CompatibilityDirection.Backward, "#/maxLength", "maxLength decreased from 30 to 20");
        var forward = (1, CompatibilityDirection.Forward, "#/maxLength", "maxLength increased from 10 to 20");
        Assert.Empty(Check(CompatibilityLevel.None));
        Assert.Equal([backward], Check(CompatibilityLevel.Backward));
        Assert.Equal([backward], Check(CompatibilityLevel.BackwardTransitive));
        Assert.Empty(Check(CompatibilityLevel.Forward));
        Assert.Equal([forward], Check(CompatibilityLevel.ForwardTransitive));
        Assert.Equal([backward], Check(CompatibilityLevel.Full));
        Assert.Equal([forward, backward], Check(CompatibilityLevel.FullTransitive));
        Assert.True(SchemaCompatibility.CheckJson(newer, [], CompatibilityLevel.FullTransitive).IsCompatible);
        var difference = SchemaCompatibility.CheckJson(newer, [v1, v2], CompatibilityLevel.Backward).Differences[0];
        Assert.Equal("#/maxLength: maxLength decreased from 30 to 20 (the new schema cannot read data written with version 2)", difference.ToString());
    }

    [Fact]
    public void Schemas_that_refer_to_each_other_in_a_circle_terminate()
    {
        const string older = """{"$defs":{"a":{"type":"object","properties":{"b":{"$ref":"#/$defs/b"}}},"b":{"type":"object","properties":{"a":{"$ref":"#/$defs/a"},"n":{"type":"integer"}}}},"$ref":"#/$defs/a"}""";
        const string newer = """{"$defs":{"a":{"type":"object","properties":{"b":{"$ref":"#/$defs/b"}}},"b":{"type":"object","properties":{"a":{"$ref":"#/$defs/a"},"n":{"type":"number"}}}},"$ref":"#/$defs/a"}""";
        Assert.Empty(Differences(newer, older, CompatibilityLevel.Backward));
        Assert.Equal(["#/properties/b/properties/n: type widened from [integer] to [number]"], Differences(newer, older, CompatibilityLevel.Forward));
        foreach (var level in Enum.GetValues<CompatibilityLevel>())
            Assert.True(SchemaCompatibility.CheckJson(older, [older], level).IsCompatible);
    }

    /// <summary>A catalogue whose items are products or product ids, each of many kinds of product
    /// referring back to products: every oneOf branch against every other, through a cycle.</summary>
    private static string Catalogue(int kinds, int links, string tagType = "string")
    {
        var definitions = new List<string>
        {
            """
            "Id":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}
            """,
            """
            "ProductOrId":{"oneOf":[{"$ref":"#/$defs/Id"},{"$ref":"#/$defs/Product"}]}
            """,
        };
        for (var k = 0; k < kinds; k++)
        {
            var properties = Enumerable.Range(0, links).Select(l => $"\"link{l}\":{{\"$ref\":\"#/$defs/ProductOrId\"}}").Append($"\"tag\":{{\"type\":\"{tagType}\",\"const\":\"kind{k}\"}}");
            definitions.Add($"\"Kind{k}\":{{\"type\":\"object\",\"properties\":{{{string.Join(",", properties)}}},\"required\":[\"tag\"]}}");
        }
        definitions.Add($"\"Product\":{{\"oneOf\":[{string.Join(",", Enumerable.Range(0, kinds).Select(k => $"{{\"$ref\":\"#/$defs/Kind{k}\"}}"))}]}}");
        return $$"""{"$defs":{{{string.Join(",", definitions)}}},"$ref":"#/$defs/Product"}""";
    }

    [Fact]
    public void Many_branches_through_a_cycle_are_compared_within_the_comparison_limit()
    {
        var catalogue = Catalogue(12, 5);
        foreach (var level in Enum.GetValues<CompatibilityLevel>())
            Assert.True(SchemaCompatibility.CheckJson(catalogue, [catalogue], level).IsCompatible);
        Assert.False(SchemaCompatibility.CheckJson(Catalogue(12, 5, "integer"), [catalogue], CompatibilityLevel.Backward).IsCompatible);
    }

    [Theory]
    [InlineData("""{"type":"string",}""", "is not valid JSON at line 1, byte position 18")]
    [InlineData("{\n  \"type\": \"string\"\n  \"maxLength\": 3\n}", "is not valid JSON at line 3, byte position 3")]
    [InlineData("", "is not valid JSON at line 1, byte position 1")]
    [InlineData("""5""", "#: a schema is an object or a boolean, not a number")]
    [InlineData("""{"properties":{"amount":{"type":5}}}""", "#/properties/amount/type: \"type\" is a type name or a non-empty array of them, not 5")]
    [InlineData("""{"properties":{"amount":{"type":"decimal"}}}""", "#/properties/amount/type: \"decimal\" is not a type")]
    [InlineData("""{"type":["string",7]}""", "#/type/1: 7 is not a type")]
    [InlineData("""{"properties":[]}""", "#/properties: \"properties\" is an object of schemas, not an array")]
    [InlineData("""{"required":"x"}""", "#/required: \"required\" is an array of property names, not a string")]
    [InlineData("""{"maxLength":-1}""", "#/maxLength: \"maxLength\" is a non-negative integer, not -1")]
    [InlineData("""{"pattern":"("}""", "#/pattern: \"(\" is not a regular expression")]
    [InlineData("""{"oneOf":[]}""", "#/oneOf: \"oneOf\" is a non-empty array of schemas, not an empty array")]
    [InlineData("""{"items":{"$ref":"#/definitions/missing"}}""", "#/items/$ref: $ref '#/definitions/missing' does not resolve to anything in the schema")]
    [InlineData("""{"definitions":{"unused":{"minimum":"0"}}}""", "#/definitions/unused/minimum: \"minimum\" is a number, not a string")]
    [InlineData("""{"$ref":"other.json#/x"}""", "#/$ref: $ref 'other.json#/x' is not a local reference")]
    [InlineData("""{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}""", "leads only to references, in a circle")]
    public void An_invalid_schema_is_an_error_naming_where(string schema, string expected)
    {
        var e = Assert.Throws<InvalidSchemaException>(() => SchemaCompatibility.ParseJson(schema, "order.json"));
        Assert.StartsWith("order.json is not ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Checking_names_the_version_that_is_invalid()
    {
        var e = Assert.Throws<InvalidSchemaException>(() => SchemaCompatibility.CheckJson("""{"type":"string"}""", ["""{"type":"string"}""", """{"type":5}"""], CompatibilityLevel.Backward));
        Assert.Equal("version 2 is not a valid JSON Schema: #/type: \"type\" is a type name or a non-empty array of them, not 5", e.Message);
        var n = Assert.Throws<InvalidSchemaException>(() => SchemaCompatibility.CheckJson("""{"type":""", [], CompatibilityLevel.None));
        Assert.StartsWith("the new schema is not valid JSON", n.Message, StringComparison.Ordinal);
        Assert.Equal("string", SchemaCompatibility.ParseJson("""{"type":"string"}""").GetProperty("type").GetString());
    }

    // Random schemas over a small pool of property names, types and bounds, so that two of them
    // often share properties and differ in a few: bounds, required, closed models, enums, unions.
    private static readonly string[] PropertyNames = ["a", "b", "c"];

    private static Gen<string> GenBound(string keyword) => Gen.Frequency((2, Gen.Const("")), (1, Gen.Int[0, 3].Select(n => $",\"{keyword}\":{n * 5}")));

    private static Gen<string> GenSchema(int depth)
    {
        var scalar = Gen.OneOf(
            GenBound("maxLength").Select(b => $$"""{"type":"string"{{b}}}"""),
            Gen.Select(Gen.OneOf(Gen.Const("integer"), Gen.Const("number")), GenBound("minimum")).Select((t, b) => $$"""{"type":"{{t}}"{{b}}}"""),
            Gen.Const("""{"type":"boolean"}"""),
            Gen.Const("""{"type":["string","null"]}"""),
            Gen.Int[1, 7].Select(mask => $$"""{"enum":[{{string.Join(",", new[] { "\"x\"", "\"y\"", "1" }.Where((_, i) => (mask & (1 << i)) != 0))}}]}"""),
            Gen.Const("""{}"""));
        if (depth == 0) return scalar;
        var sub = GenSchema(depth - 1);
        return Gen.Frequency(
            (4, scalar),
            (1, Gen.Select(sub, GenBound("maxItems")).Select((items, b) => $$"""{"type":"array","items":{{items}}{{b}}}""")),
            (1, Gen.Select(sub, sub).Select((x, y) => $$"""{"oneOf":[{{x}},{{y}}]}""")),
            (3, GenObject(depth - 1)));
    }

    private static Gen<string> GenObject(int depth) =>
        Gen.Select(Gen.Int[0, 7], Gen.Int[0, 7], Gen.Int[0, 2]).SelectMany((present, required, model) =>
        {
            var names = PropertyNames.Where((_, i) => (present & (1 << i)) != 0).ToArray();
            var properties = names.Aggregate(Gen.Const(Array.Empty<string>()), (so, n) => so.SelectMany(got => GenSchema(depth).Select(s => got.Append($"\"{n}\":{s}").ToArray())));
            var requiredNames = names.Where((_, i) => (required & (1 << i)) != 0).Select(n => $"\"{n}\"");
            var closing = model switch { 1 => ",\"additionalProperties\":false", 2 => ",\"additionalProperties\":{\"type\":\"string\"}", _ => "" };
            return properties.Select(all => $$"""{"type":"object","properties":{{{string.Join(",", all)}}},"required":[{{string.Join(",", requiredNames)}}]{{closing}}}""");
        });

    private static readonly Gen<string> GenRoot = GenSchema(2);

    [Fact]
    public void A_schema_is_compatible_with_itself_at_every_level() =>
        GenRoot.Sample(schema =>
        {
            foreach (var level in Enum.GetValues<CompatibilityLevel>())
                Assert.True(SchemaCompatibility.CheckJson(schema, [schema], level).IsCompatible, $"{level}: {schema}");
        }, iter: 300);

    [Fact]
    public void Full_is_backward_and_forward_and_forward_is_backward_reversed() =>
        Gen.Select(GenRoot, GenRoot).Sample((a, b) =>
        {
            var backward = SchemaCompatibility.CheckJson(a, [b], CompatibilityLevel.Backward).IsCompatible;
            var forward = SchemaCompatibility.CheckJson(a, [b], CompatibilityLevel.Forward).IsCompatible;
            Assert.Equal(backward && forward, SchemaCompatibility.CheckJson(a, [b], CompatibilityLevel.Full).IsCompatible);
            Assert.Equal(forward, SchemaCompatibility.CheckJson(b, [a], CompatibilityLevel.Backward).IsCompatible);
        }, iter: 500);

    [Fact]
    public void Transitive_levels_check_every_older_version() =>
        Gen.Select(GenRoot, GenRoot.Array[1, 4]).Sample((schema, older) =>
        {
            foreach (var (level, single) in new[] { (CompatibilityLevel.BackwardTransitive, CompatibilityLevel.Backward), (CompatibilityLevel.ForwardTransitive, CompatibilityLevel.Forward), (CompatibilityLevel.FullTransitive, CompatibilityLevel.Full) })
            {
                var each = older.All(o => SchemaCompatibility.CheckJson(schema, [o], single).IsCompatible);
                Assert.Equal(each, SchemaCompatibility.CheckJson(schema, older, level).IsCompatible);
                Assert.Equal(SchemaCompatibility.CheckJson(schema, [older[^1]], single).IsCompatible, SchemaCompatibility.CheckJson(schema, older, single).IsCompatible);
            }
        }, iter: 300);

    [Fact]
    public void Random_pairs_do_break_sometimes_so_the_laws_above_are_not_vacuous()
    {
        var broke = 0;
        var held = 0;
        Gen.Select(GenRoot, GenRoot).Sample((a, b) =>
        {
            if (SchemaCompatibility.CheckJson(a, [b], CompatibilityLevel.Backward).IsCompatible) Interlocked.Increment(ref held);
            else Interlocked.Increment(ref broke);
        }, iter: 300, threads: 1);
        Assert.True(broke > 30 && held > 5, $"{broke} broke and {held} held of 300");
    }
}
