namespace Herald.Schemas.Compatibility.Internal;

/// <summary>allOf, anyOf and oneOf compared branch by branch: a maximum matching of compatible
/// pairs, every branch of the smaller side matched.</summary>
internal sealed partial class JsonSchemaDiff
{
    private void CompareCombined(CombinedNode w, CombinedNode r, List<JsonChange> into)
    {
        if (w.Criterion != r.Criterion)
        {
            var widens = r.Criterion == Criterion.AnyOf
                || (w.Subschemas.Count == 1 && r.Subschemas.Count == 1)
                || (w.Subschemas.Count == 1 && r.Criterion == Criterion.OneOf)
                || (r.Subschemas.Count == 1 && w.Criterion == Criterion.AllOf);
            if (!widens)
            {
                Add(into, "", s => $"{s.Old(w, r).Keyword} changed to {s.New(w, r).Keyword}");
                return;
            }
        }
        var ws = Distinct(w.Subschemas);
        var rs = Distinct(r.Subschemas);
        if (ws.Count < rs.Count && r.Criterion == Criterion.AllOf)
            Add(into, "", s => Branches(s.Old(w, r).Keyword, s.Old(ws.Count, rs.Count), s.New(ws.Count, rs.Count)));
        else if (ws.Count > rs.Count && w.Criterion != Criterion.AllOf)
            Add(into, "", s => Branches(s.Old(w, r).Keyword, s.Old(ws.Count, rs.Count), s.New(ws.Count, rs.Count)));

        // Which writer's branch each reader's branch accepts: a maximum matching must cover the smaller side.
        var edges = new bool[ws.Count, rs.Count];
        for (var i = 0; i < ws.Count; i++)
            for (var j = 0; j < rs.Count; j++)
                edges[i, j] = Try(Child("", w.Keyword, i), ws[i], rs[j], out _);
        var matchOfReader = MaximumMatching(edges, ws.Count, rs.Count);
        var matched = matchOfReader.Count(m => m >= 0);
        if (matched >= Math.Min(ws.Count, rs.Count)) return;
        if (ws.Count <= rs.Count)
        {
            var first = Enumerable.Range(0, ws.Count).First(i => !matchOfReader.Contains(i));
            Add(into, "", s => $"{w.Keyword} changed: no branch of the {s.Reader} schema accepts branch {first} of the {s.Writer} schema");
        }
        else
        {
            var first = Array.IndexOf(matchOfReader, -1);
            Add(into, "", s => $"{r.Keyword} changed: branch {first} of the {s.Reader} schema accepts no branch of the {s.Writer} schema");
        }
    }

    private static string Branches(string keyword, int older, int newer) =>
        $"{keyword} {(newer > older ? "branch added" : "branch removed")} ({older} → {newer} branches)";

    private static List<JsonSchemaNode> Distinct(IReadOnlyList<JsonSchemaNode> subschemas)
    {
        // Equal JSON is one branch; the types of a "type" array (no JSON of their own) are each their own.
        var seen = new HashSet<object>();
        return subschemas.Where(s => Deref(s) is var n && seen.Add(n.Json.Length > 0 ? n.Json : n)).ToList();
    }

    /// <summary>Kuhn's augmenting paths; the writer's index matched to each reader's branch, or -1.</summary>
    private static int[] MaximumMatching(bool[,] edges, int writers, int readers)
    {
        var matchOfReader = Enumerable.Repeat(-1, readers).ToArray();
        for (var i = 0; i < writers; i++) Augment(i, new bool[readers]);
        return matchOfReader;

        bool Augment(int writer, bool[] visited)
        {
            for (var j = 0; j < readers; j++)
            {
                if (!edges[writer, j] || visited[j]) continue;
                visited[j] = true;
                if (matchOfReader[j] < 0 || Augment(matchOfReader[j], visited))
                {
                    matchOfReader[j] = writer;
                    return true;
                }
            }
            return false;
        }
    }
}
