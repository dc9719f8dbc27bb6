using System.Globalization;
using System.Text.Json;

namespace Herald.Schemas.Compatibility.Internal;

/// <summary>One breaking difference: where (a JSON pointer fragment, relative to the compared
/// pair while it is being built) and what, in the terms of the change from the older schema to the
/// new one — which depends on whether the older schema wrote the data (backward) or reads it
/// (forward).</summary>
internal sealed record JsonChange(string Path, string IfBackward, string IfForward)
{
    public string Message(CompatibilityDirection direction) => direction == CompatibilityDirection.Backward ? IfBackward : IfForward;
}

/// <summary>Which schema is which in one direction: the writer's data must be accepted by the reader.</summary>
internal readonly record struct Side(bool Backward)
{
    /// <summary>The older schema wrote the data (backward) or reads it (forward).</summary>
    public string Writer => Backward ? "older" : "new";

    public string Reader => Backward ? "new" : "older";

    public T Old<T>(T writer, T reader) => Backward ? writer : reader;

    public T New<T>(T writer, T reader) => Backward ? reader : writer;
}

/// <summary>
/// Confluent Schema Registry's JSON Schema compatibility (its <c>SchemaDiff</c>, STRICT policy,
/// the registry's default), in Herald's own code: is every document the writer's schema accepts
/// also accepted by the reader's? The rules, per kind of schema:
/// <list type="bullet">
/// <item>types: equal; integer may widen to number; anything may become <c>true</c>/<c>{}</c>,
/// <c>false</c> may become anything; a schema may become a oneOf/anyOf one of whose branches
/// accepts it, an allOf may become one of its branches;</item>
/// <item>strings, numbers, arrays, objects: a bound may be removed or relaxed, never added or
/// tightened (maxLength, minLength, pattern, maximum, minimum, exclusive*, multipleOf — which may
/// become a divisor of itself —, maxItems, minItems, maxContains, minContains, uniqueItems,
/// maxProperties, minProperties);</item>
/// <item>properties, by content model: a property may be removed from an open model (no
/// additionalProperties, patternProperties or unevaluatedProperties), or from a partially open one
/// whose schema for it accepts the removed property's; it may be added to a closed or partially
/// open model (covered by the model's schema for it), never to an open one (STRICT: the open
/// model may have written it with any value) unless it is <c>true</c>/<c>{}</c>; a required
/// property may not be added (unless it has a default, in a closed model); additionalProperties
/// may open, not close or narrow;</item>
/// <item>tuples (items arrays, prefixItems) the same way by position, with additionalItems as the
/// content model;</item>
/// <item>enum values may be added, not removed; const may not change;</item>
/// <item>allOf/anyOf/oneOf: branches are matched (a maximum matching of compatible pairs) and
/// every branch of the smaller side must be matched; a sum (anyOf/oneOf) may gain branches, a
/// product (allOf) lose them; the criterion may widen to anyOf;</item>
/// <item>not: the excluded schema may only narrow;</item>
/// <item>dependencies: array dependencies may be removed or lose names, schema dependencies be
/// removed; their schemas follow the rules above.</item>
/// </list>
/// Herald differs in what it reports, not in verdicts, in two places: the keywords of one schema
/// object ("type" beside "enum", say) are compared keyword by keyword, and "type" arrays type by
/// type, so the report names the keyword that changed where Confluent's would say "allOf/1" or
/// "subschemas changed". Recursive schemas terminate: a pair of schemas met again while it is being
/// compared is taken as compatible.
/// </summary>
internal sealed partial class JsonSchemaDiff
{
    /// <summary>Comparisons of schema pairs one check may make before it gives up.</summary>
    internal const int MaxComparisons = 200_000;

    // The pairs being compared, by their depth on the stack; what is known of finished ones; and
    // the shallowest in-progress pair assumed compatible since the current pair began. A pair's
    // result is memoized only when no pair above it was assumed: otherwise the result rests on an
    // assumption about an ancestor not yet decided, and must be recomputed where it is met again.
    private readonly Dictionary<(JsonSchemaNode, JsonSchemaNode), int> _inProgress = [];
    private readonly Dictionary<(JsonSchemaNode, JsonSchemaNode), List<JsonChange>> _memo = [];
    private int _shallowestAssumed = int.MaxValue;
    private int _comparisons;

    private JsonSchemaDiff()
    {
    }

    /// <summary>What keeps documents valid under <paramref name="writer"/> from being valid under <paramref name="reader"/>.</summary>
    public static List<JsonChange> Compare(JsonSchemaNode writer, JsonSchemaNode reader)
    {
        var changes = new List<JsonChange>();
        new JsonSchemaDiff().Compare("", writer, reader, changes);
        return changes.Select(c => c with { Path = c.Path.Length == 0 ? "#/" : "#" + c.Path }).ToList();
    }

    private static string Child(string path, string token) =>
        path + "/" + token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string Child(string path, string token, int index) => Child(path, token) + "/" + index.ToString(CultureInfo.InvariantCulture);

    private static void Add(List<JsonChange> into, string path, Func<Side, string> message) =>
        into.Add(new JsonChange(path, message(new Side(true)), message(new Side(false))));

    private static JsonSchemaNode Deref(JsonSchemaNode node)
    {
        while (node is RefNode r) node = r.Referred!;
        return node;
    }

    private void Compare(string path, JsonSchemaNode writer, JsonSchemaNode reader, List<JsonChange> into)
    {
        writer = Deref(writer);
        reader = Deref(reader);
        var key = (writer, reader);
        if (_memo.TryGetValue(key, out var known))
        {
            foreach (var c in known) into.Add(c with { Path = path + c.Path });
            return;
        }
        if (_inProgress.TryGetValue(key, out var depth))
        {
            // Met again inside itself: compatible unless something else says not (the greatest
            // fixed point).
            _shallowestAssumed = Math.Min(_shallowestAssumed, depth);
            return;
        }
        if (++_comparisons > MaxComparisons)
            throw new InvalidSchemaException($"the schemas are too complex to compare: more than {MaxComparisons} comparisons of subschemas");
        var myDepth = _inProgress.Count;
        _inProgress[key] = myDepth;
        var outer = _shallowestAssumed;
        _shallowestAssumed = int.MaxValue;
        var local = new List<JsonChange>();
        try
        {
            CompareTypes(writer, reader, local);
        }
        finally
        {
            _inProgress.Remove(key);
        }
        // Assumptions about this pair itself are settled now that it is done.
        var inner = _shallowestAssumed;
        if (inner >= myDepth) _memo[key] = local;
        _shallowestAssumed = Math.Min(outer, inner >= myDepth ? int.MaxValue : inner);
        foreach (var c in local) into.Add(c with { Path = path + c.Path });
    }

    /// <summary>Compares on a scratch list: true when compatible; the differences in <paramref name="changes"/>.</summary>
    private bool Try(string path, JsonSchemaNode writer, JsonSchemaNode reader, out List<JsonChange> changes)
    {
        changes = [];
        Compare(path, writer, reader, changes);
        return changes.Count == 0;
    }

    private void CompareTypes(JsonSchemaNode writer, JsonSchemaNode reader, List<JsonChange> into)
    {
        if (TryCompareFacets(writer, reader, into) || TryCompareTypeArrays(writer, reader, into)) return;
        if (writer is not CombinedNode && reader is CombinedNode rc)
        {
            if (rc.Subschemas.Count == 1)
            {
                var path = Child("", rc.Keyword, 0);
                if (Try(path, writer, rc.Subschemas[0], out var only)) return;
                into.AddRange(only);
                return;
            }
            if (rc.Criterion != Criterion.AllOf)
            {
                for (var i = 0; i < rc.Subschemas.Count; i++)
                    if (Try("", writer, rc.Subschemas[i], out _)) return;
            }
        }
        else if (writer is CombinedNode wc && reader is not CombinedNode)
        {
            if (wc.Subschemas.Count == 1)
            {
                if (Try(Child("", wc.Keyword, 0), wc.Subschemas[0], reader, out var only)) return;
                into.AddRange(only);
                return;
            }
            if (wc.Criterion == Criterion.AllOf)
            {
                foreach (var sub in wc.Subschemas)
                    if (Try("", sub, reader, out _)) return;
            }
        }

        if (!SameKind(writer, reader))
        {
            if (writer is FalseNode || reader is TrueNode) return;
            if (reader is CombinedNode { Origin: CombinedOrigin.Keyword } sum && writer is not CombinedNode)
                Add(into, "", s => $"no branch of the {s.Reader} schema's {sum.Keyword} accepts the {s.Writer} schema's {writer.Label}");
            else if (writer is CombinedNode { Origin: CombinedOrigin.Keyword } product && reader is not CombinedNode)
                Add(into, "", s => $"the {s.Reader} schema's {reader.Label} does not accept the {s.Writer} schema's {product.Keyword}");
            else
                Add(into, "", s => TypeMessage(Labels(s.Old(writer, reader)), Labels(s.New(writer, reader))));
            return;
        }
        switch (writer)
        {
            case StringNode w: CompareString(w, (StringNode)reader, into); break;
            case NumberNode w: CompareNumber(w, (NumberNode)reader, into); break;
            case EnumNode w: CompareEnum(w, (EnumNode)reader, into); break;
            case ConstNode w:
                var r = (ConstNode)reader;
                if (!JsonElement.DeepEquals(w.Value, r.Value))
                    Add(into, "/const", s => $"const changed from {s.Old(w, r).Value.GetRawText()} to {s.New(w, r).Value.GetRawText()}");
                break;
            case CombinedNode w: CompareCombined(w, (CombinedNode)reader, into); break;
            case NotNode w:
                // The excluded schemas swap roles: the reader may exclude less, not more.
                if (!Try("/not", ((NotNode)reader).MustNotMatch, w.MustNotMatch, out _))
                    Add(into, "/not", s => $"not changed: the {s.Reader} schema excludes values the {s.Writer} schema accepts");
                break;
            case ObjectNode w: CompareObject(w, (ObjectNode)reader, into); break;
            case ArrayNode w: CompareArray(w, (ArrayNode)reader, into); break;
        }
    }

    private static bool SameKind(JsonSchemaNode a, JsonSchemaNode b) =>
        a.GetType() == b.GetType();

    private static bool IsTyped(JsonSchemaNode n) => n is ObjectNode or ArrayNode or StringNode or NumberNode or BooleanNode or NullNode;

    private static List<string> Labels(JsonSchemaNode n) =>
        n is CombinedNode { Origin: CombinedOrigin.TypeArray } c ? c.Subschemas.Select(s => s.Label).ToList() : [n.Label];

    /// <summary>"type narrowed from [number] to [integer]", widened, or changed.</summary>
    private static string TypeMessage(List<string> older, List<string> newer)
    {
        static bool Covers(List<string> set, string label) =>
            set.Contains("any") || set.Contains(label) || (label == "integer" && set.Contains("number")) || label == "nothing";
        var verb = newer.All(n => Covers(older, n)) ? "narrowed" : older.All(o => Covers(newer, o)) ? "widened" : "changed";
        return $"type {verb} from [{string.Join(", ", older)}] to [{string.Join(", ", newer)}]";
    }

    /// <summary>Herald's: the keywords of one schema object, compared keyword by keyword.</summary>
    private bool TryCompareFacets(JsonSchemaNode writer, JsonSchemaNode reader, List<JsonChange> into)
    {
        if (writer is not CombinedNode { Origin: CombinedOrigin.Facets } && reader is not CombinedNode { Origin: CombinedOrigin.Facets }) return false;
        var w = Facets(writer);
        var r = Facets(reader);
        if (w is null || r is null) return false;
        foreach (var (keyword, rf) in r)
        {
            if (w.TryGetValue(keyword, out var wf)) Compare("", wf, rf, into);
            else Add(into, "/" + keyword, s => $"{keyword} {(s.Backward ? "added" : "removed")}");
        }
        return true; // a keyword only the writer has is a constraint dropped
    }

    /// <summary>A schema's facets by keyword, or null when two share one or one is itself facets.</summary>
    private static Dictionary<string, JsonSchemaNode>? Facets(JsonSchemaNode node)
    {
        var facets = node is CombinedNode { Origin: CombinedOrigin.Facets } c ? c.Subschemas : [node];
        var byKeyword = new Dictionary<string, JsonSchemaNode>(StringComparer.Ordinal);
        foreach (var f in facets)
        {
            var n = Deref(f);
            var keyword = n switch
            {
                CombinedNode { Origin: CombinedOrigin.Facets } => null,
                CombinedNode { Origin: CombinedOrigin.TypeArray } => "type",
                CombinedNode k => k.Keyword,
                EnumNode => "enum",
                ConstNode => "const",
                NotNode => "not",
                TrueNode or FalseNode => null,
                _ when IsTyped(n) => "type",
                _ => null,
            };
            if (keyword is null || !byKeyword.TryAdd(keyword, n)) return null;
        }
        return byKeyword;
    }

    /// <summary>Herald's: "type" arrays (or one type against an array) compared type by type.</summary>
    private bool TryCompareTypeArrays(JsonSchemaNode writer, JsonSchemaNode reader, List<JsonChange> into)
    {
        static IReadOnlyList<JsonSchemaNode>? Types(JsonSchemaNode n) =>
            n is CombinedNode { Origin: CombinedOrigin.TypeArray } c ? c.Subschemas : IsTyped(n) ? [n] : null;
        if (writer is not CombinedNode { Origin: CombinedOrigin.TypeArray } && reader is not CombinedNode { Origin: CombinedOrigin.TypeArray }) return false;
        var w = Types(writer);
        var r = Types(reader);
        if (w is null || r is null) return false;
        var unmatched = false;
        foreach (var wt in w)
        {
            var rt = r.FirstOrDefault(t => SameKind(t, wt));
            if (rt is null) unmatched = true;
            else Compare("", wt, rt, into);
        }
        if (unmatched) Add(into, "", s => TypeMessage(Labels(s.Old(writer, reader)), Labels(s.New(writer, reader))));
        return true;
    }

    private static string Text(JsonNumber? n) => n?.Text ?? "none";

    /// <summary>A bound that may be removed or raised, not added or lowered (maxLength...).</summary>
    private static void UpperBound(List<JsonChange> into, string keyword, JsonNumber? writer, JsonNumber? reader)
    {
        if (reader is null || (writer is not null && writer.Value.Value <= reader.Value.Value)) return;
        Add(into, "/" + keyword, s => Bound(keyword, s.Old(writer, reader), s.New(writer, reader)));
    }

    /// <summary>A bound that may be removed or lowered, not added or raised (minLength...).</summary>
    private static void LowerBound(List<JsonChange> into, string keyword, JsonNumber? writer, JsonNumber? reader)
    {
        if (reader is null || (writer is not null && writer.Value.Value >= reader.Value.Value)) return;
        Add(into, "/" + keyword, s => Bound(keyword, s.Old(writer, reader), s.New(writer, reader)));
    }

    private static string Bound(string keyword, JsonNumber? older, JsonNumber? newer) =>
        older is null ? $"{keyword} {Text(newer)} added"
        : newer is null ? $"{keyword} {Text(older)} removed"
        : older.Value.Value < newer.Value.Value ? $"{keyword} increased from {older.Value.Text} to {newer.Value.Text}"
        : older.Value.Value > newer.Value.Value ? $"{keyword} decreased from {older.Value.Text} to {newer.Value.Text}"
        : $"{keyword} changed from {older.Value.Text} to {newer.Value.Text}";

    private static void CompareString(StringNode w, StringNode r, List<JsonChange> into)
    {
        UpperBound(into, "maxLength", w.MaxLength, r.MaxLength);
        LowerBound(into, "minLength", w.MinLength, r.MinLength);
        if (r.Pattern is not null && !string.Equals(w.Pattern, r.Pattern, StringComparison.Ordinal))
        {
            Add(into, "/pattern", s => (s.Old(w.Pattern, r.Pattern), s.New(w.Pattern, r.Pattern)) switch
            {
                (null, var n) => $"pattern \"{n}\" added",
                (var o, null) => $"pattern \"{o}\" removed",
                var (o, n) => $"pattern changed from \"{o}\" to \"{n}\"",
            });
        }
    }

    private static void CompareNumber(NumberNode w, NumberNode r, List<JsonChange> into)
    {
        UpperBound(into, "maximum", w.Maximum, r.Maximum);
        LowerBound(into, "minimum", w.Minimum, r.Minimum);
        UpperBound(into, "exclusiveMaximum", w.ExclusiveMaximum, r.ExclusiveMaximum);
        LowerBound(into, "exclusiveMinimum", w.ExclusiveMinimum, r.ExclusiveMinimum);
        // The reader's multipleOf may be dropped or divide the writer's: 4 → 2, not 2 → 4 or 2 → 3.
        if (r.MultipleOf is { } rm && (w.MultipleOf is not { } wm || wm.Value % rm.Value != 0))
            Add(into, "/multipleOf", s => Bound("multipleOf", s.Old(w.MultipleOf, r.MultipleOf), s.New(w.MultipleOf, r.MultipleOf)).Replace(" increased", " changed", StringComparison.Ordinal).Replace(" decreased", " changed", StringComparison.Ordinal));
        if (!w.RequiresInteger && r.RequiresInteger)
            Add(into, "", s => TypeMessage([s.Old(w, r).Label], [s.New(w, r).Label]));
    }

    private static void CompareEnum(EnumNode w, EnumNode r, List<JsonChange> into)
    {
        static bool In(IReadOnlyList<JsonElement> set, JsonElement v) => set.Any(x => JsonElement.DeepEquals(x, v));
        if (w.Values.All(v => In(r.Values, v))) return;
        Add(into, "/enum", s =>
        {
            var (older, newer) = (s.Old(w.Values, r.Values), s.New(w.Values, r.Values));
            var removed = older.Where(v => !In(newer, v)).Select(v => v.GetRawText()).ToList();
            var added = newer.Where(v => !In(older, v)).Select(v => v.GetRawText()).ToList();
            return (removed.Count, added.Count) switch
            {
                (_, 0) => $"enum values removed: {string.Join(", ", removed)}",
                (0, _) => $"enum values added: {string.Join(", ", added)}",
                _ => $"enum values changed: {string.Join(", ", removed)} removed, {string.Join(", ", added)} added",
            };
        });
    }
}
