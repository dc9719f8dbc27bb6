namespace Herald.Schemas.Compatibility.Internal;

/// <summary>Objects and arrays: properties and tuple items by content model (open, partially open,
/// closed), required properties, dependencies and the containers' bounds.</summary>
internal sealed partial class JsonSchemaDiff
{
    private static bool IsOpen(ObjectNode o) =>
        o.PermitsAdditionalProperties && o.AdditionalProperties is null && o.PatternProperties.Count == 0 && o.UnevaluatedProperties is null or TrueNode;

    /// <summary>The schema a partially open content model gives a property it does not name, if any.</summary>
    private static JsonSchemaNode? Partial(ObjectNode o, string property)
    {
        foreach (var (pattern, schema) in o.PatternProperties)
            if (pattern.IsMatch(property)) return schema;
        if (o.AdditionalProperties is not null) return o.AdditionalProperties;
        if (o.PermitsAdditionalProperties && o.UnevaluatedProperties is { } u && u is not (TrueNode or FalseNode)) return u;
        return null;
    }

    private void CompareObject(ObjectNode w, ObjectNode r, List<JsonChange> into)
    {
        foreach (var name in w.Properties.Keys)
        {
            if (!r.Properties.TryGetValue(name, out var rp) || w.Required.Contains(name) || !r.Required.Contains(name) || rp.HasDefault) continue;
            Add(into, Child("/required", name), s => s.Backward ? $"property {name} made required" : $"property {name} no longer required");
        }
        // Herald's: a name made required that neither schema declares (Confluent looks only at declared ones).
        foreach (var name in r.Required)
        {
            if (w.Required.Contains(name) || w.Properties.ContainsKey(name) || r.Properties.ContainsKey(name)) continue;
            Add(into, Child("/required", name), s => s.Backward ? $"property {name} made required" : $"property {name} no longer required");
        }
        foreach (var (name, wp) in w.Properties)
        {
            var path = Child("/properties", name);
            if (r.Properties.TryGetValue(name, out var rp))
            {
                Compare(path, wp, rp, into);
                continue;
            }
            if (IsOpen(r)) continue;
            if (Partial(r, name) is { } partial)
            {
                if (Try(path, wp, partial, out var changes)) continue;
                into.AddRange(changes);
                Add(into, path, s => s.Backward
                    ? $"property {name} removed, and the new schema's partially open content model does not accept its older values"
                    : $"property {name} added, and the older schema's partially open content model does not accept its new values");
            }
            else if (Deref(wp) is not FalseNode)
            {
                Add(into, path, s => s.Backward ? $"property {name} removed from a closed content model" : $"property {name} added to a closed content model");
            }
        }
        foreach (var (name, rp) in r.Properties)
        {
            if (w.Properties.ContainsKey(name)) continue;
            var path = Child("/properties", name);
            var required = r.Required.Contains(name);
            if (IsOpen(w))
            {
                if (Deref(rp) is TrueNode) continue;
                if (required && !rp.HasDefault)
                    Add(into, path, s => s.Backward ? $"required property {name} added" : $"required property {name} removed");
                else
                    Add(into, path, s => s.Backward
                        ? $"{(required ? "required property (with a default)" : "property")} {name} added to an open content model (the older schema allows any value for it)"
                        : $"{(required ? "required property (with a default)" : "property")} {name} removed, leaving an open content model (the new schema allows any value for it)");
                continue;
            }
            if (Partial(w, name) is { } partial && !Try(path, partial, rp, out var changes))
            {
                into.AddRange(changes);
                Add(into, path, s => s.Backward
                    ? $"property {name} added, and the older schema's partially open content model allows other values for it"
                    : $"property {name} removed, and the new schema's partially open content model allows other values for it");
            }
            if (required && !rp.HasDefault)
                Add(into, path, s => s.Backward ? $"required property {name} added" : $"required property {name} removed");
        }
        CompareDependencies(w, r, into);
        CompareContentModel(into, "/additionalProperties", "additionalProperties", w.PermitsAdditionalProperties, w.AdditionalProperties, r.PermitsAdditionalProperties, r.AdditionalProperties);
        CompareUnevaluated(into, "unevaluatedProperties", w.UnevaluatedProperties, r.UnevaluatedProperties);
        UpperBound(into, "maxProperties", w.MaxProperties, r.MaxProperties);
        LowerBound(into, "minProperties", w.MinProperties, r.MinProperties);
    }

    private void CompareDependencies(ObjectNode w, ObjectNode r, List<JsonChange> into)
    {
        static string Names(IReadOnlySet<string>? names) => names is null ? "none" : "[" + string.Join(", ", names.Order(StringComparer.Ordinal)) + "]";
        foreach (var (name, rd) in r.PropertyDependencies)
        {
            w.PropertyDependencies.TryGetValue(name, out var wd);
            if (wd is not null && rd.IsSubsetOf(wd)) continue;
            var keyword = r.PropertyDependenciesKeyword;
            Add(into, Child("/" + keyword, name), s => (s.Old(wd, rd), s.New(wd, rd)) switch
            {
                (null, var n) => $"{keyword} of {name} added: {Names(n)}",
                (var o, null) => $"{keyword} of {name} removed: {Names(o)}",
                var (o, n) => $"{keyword} of {name} changed from {Names(o)} to {Names(n)}",
            });
        }
        foreach (var (name, rd) in r.SchemaDependencies)
        {
            var path = Child("/" + r.SchemaDependenciesKeyword, name);
            if (w.SchemaDependencies.TryGetValue(name, out var wd)) Compare(path, wd, rd, into);
            else Add(into, path, s => $"{r.SchemaDependenciesKeyword} schema of {name} {(s.Backward ? "added" : "removed")}");
        }
    }

    private static string ContentModel(bool permits, JsonSchemaNode? schema) => !permits ? "false" : schema is null ? "true (or absent)" : "a schema";

    /// <summary>additionalProperties and additionalItems: may open or widen, not close or narrow.</summary>
    private void CompareContentModel(List<JsonChange> into, string path, string keyword, bool wPermits, JsonSchemaNode? wSchema, bool rPermits, JsonSchemaNode? rSchema)
    {
        if (wPermits != rPermits)
        {
            if (rPermits) return;
        }
        else if (rSchema is null) return;
        else if (wSchema is not null)
        {
            Compare(path, wSchema, rSchema, into);
            return;
        }
        Add(into, path, s => $"{keyword} changed from {s.Old(ContentModel(wPermits, wSchema), ContentModel(rPermits, rSchema))} to {s.New(ContentModel(wPermits, wSchema), ContentModel(rPermits, rSchema))}");
    }

    /// <summary>unevaluatedProperties and unevaluatedItems, as Confluent compares them.</summary>
    private void CompareUnevaluated(List<JsonChange> into, string keyword, JsonSchemaNode? w, JsonSchemaNode? r)
    {
        static string Label(JsonSchemaNode? n) => n switch { null => "absent", TrueNode => "true", FalseNode => "false", _ => "a schema" };
        if (w is null && r is null) return;
        var path = "/" + keyword;
        bool breaks;
        if (w is null) breaks = true;
        else if (r is null) breaks = false;
        else if (w is FalseNode) breaks = false;
        else if (r is FalseNode) breaks = true;
        else if (w is TrueNode) breaks = r is not TrueNode;
        else if (r is TrueNode) breaks = false;
        else
        {
            Compare(path, w, r, into);
            return;
        }
        if (breaks) Add(into, path, s => $"{keyword} changed from {Label(s.Old(w, r))} to {Label(s.New(w, r))}");
    }

    private static bool IsOpen(ArrayNode a) =>
        a.PermitsAdditionalItems && a.AdditionalItems is null && a.UnevaluatedItems is null or TrueNode;

    private static JsonSchemaNode? Partial(ArrayNode a)
    {
        if (a.AdditionalItems is not null) return a.AdditionalItems;
        if (a.PermitsAdditionalItems && a.UnevaluatedItems is { } u && u is not (TrueNode or FalseNode)) return u;
        return null;
    }

    private void CompareArray(ArrayNode w, ArrayNode r, List<JsonChange> into)
    {
        if (w.AllItems is not null && r.AllItems is not null) Compare("/items", w.AllItems, r.AllItems, into);
        else if (r.AllItems is not null) Add(into, "/items", s => $"items schema {(s.Backward ? "added" : "removed")}");

        IReadOnlyList<JsonSchemaNode> wt = w.ItemSchemas ?? [], rt = r.ItemSchemas ?? [];
        var keyword = w.ItemSchemas is not null ? w.TupleKeyword : r.TupleKeyword;
        for (var i = 0; i < Math.Max(wt.Count, rt.Count); i++)
        {
            var path = Child("", keyword, i);
            var index = i;
            if (i < wt.Count && i < rt.Count) Compare(path, wt[i], rt[i], into);
            else if (i < wt.Count)
            {
                if (IsOpen(r)) continue;
                if (Partial(r) is { } partial)
                {
                    if (Try(path, wt[i], partial, out var changes)) continue;
                    into.AddRange(changes);
                    Add(into, path, s => s.Backward
                        ? $"tuple item {index} removed, and the new schema's partially open content model does not accept its older values"
                        : $"tuple item {index} added, and the older schema's partially open content model does not accept its new values");
                }
                else if (Deref(wt[i]) is not FalseNode)
                {
                    Add(into, path, s => s.Backward ? $"tuple item {index} removed from a closed content model" : $"tuple item {index} added to a closed content model");
                }
            }
            else if (IsOpen(w))
            {
                if (Deref(rt[i]) is TrueNode) continue;
                Add(into, path, s => s.Backward
                    ? $"tuple item {index} added to an open content model (the older schema allows any value there)"
                    : $"tuple item {index} removed, leaving an open content model (the new schema allows any value there)");
            }
            else if (Partial(w) is { } partial && !Try(path, partial, rt[i], out var changes))
            {
                into.AddRange(changes);
                Add(into, path, s => s.Backward
                    ? $"tuple item {index} added, and the older schema's partially open content model allows other values there"
                    : $"tuple item {index} removed, and the new schema's partially open content model allows other values there");
            }
        }
        var additionalKeyword = w.ItemSchemas is not null ? w.AdditionalItemsKeyword : r.AdditionalItemsKeyword;
        CompareContentModel(into, "/" + additionalKeyword, additionalKeyword, w.PermitsAdditionalItems, w.AdditionalItems, r.PermitsAdditionalItems, r.AdditionalItems);
        CompareUnevaluated(into, "unevaluatedItems", w.UnevaluatedItems, r.UnevaluatedItems);
        UpperBound(into, "maxItems", w.MaxItems, r.MaxItems);
        LowerBound(into, "minItems", w.MinItems, r.MinItems);
        UpperBound(into, "maxContains", w.MaxContains, r.MaxContains);
        LowerBound(into, "minContains", w.MinContains, r.MinContains);
        if (!w.UniqueItems && r.UniqueItems) Add(into, "/uniqueItems", s => $"uniqueItems {(s.Backward ? "added" : "removed")}");
    }
}
