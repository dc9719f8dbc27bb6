using Avro;

namespace Herald.Schemas.Compatibility;

/// <summary>What keeps a reader's schema from reading data written with a writer's schema.</summary>
internal enum BreakKind
{
    /// <summary>The writer's type cannot be read as the reader's (no promotion).</summary>
    Type,

    /// <summary>Named types whose names differ, the reader having no alias for the writer's.</summary>
    Name,

    /// <summary>Fixed types of different sizes.</summary>
    FixedSize,

    /// <summary>A reader's field the writer does not have, without a default in the reader.</summary>
    FieldWithoutDefault,

    /// <summary>Writer's enum symbols the reader lacks, the reader's enum having no default.</summary>
    EnumSymbols,

    /// <summary>A branch of the writer's union that no branch of the reader's union reads.</summary>
    UnionBranch,
}

/// <summary>One breaking difference: where (a path of record and field names, <c>[]</c> for array
/// items, <c>{}</c> for map values) and what, in the reader's and writer's terms.</summary>
internal sealed record Break(string Path, BreakKind Kind, string Reader, string Writer);

/// <summary>
/// The Avro specification's schema resolution, as a check: can data written with the writer's
/// schema be read with the reader's? Every rule of the specification's "Schema Resolution"
/// section, reported as the path of each difference that breaks it:
/// <list type="bullet">
/// <item>primitives must be equal, or promoted: int to long, float or double; long to float or
/// double; float to double; string to bytes and bytes to string;</item>
/// <item>records, enums and fixed types must have the same unqualified name, or the reader an
/// alias that is the writer's name (full or unqualified); fixed sizes must be equal;</item>
/// <item>record fields are matched by name or by the reader field's aliases; a writer's field
/// the reader lacks is ignored; a reader's field the writer lacks needs a default;</item>
/// <item>a writer's enum symbol the reader lacks needs the reader's enum default;</item>
/// <item>arrays and maps resolve their items and values;</item>
/// <item>each branch of a writer's union must be read by the reader (by the first matching
/// branch of a reader's union); a non-union writer must be read by the first matching branch of a
/// reader's union.</item>
/// </list>
/// Logical types resolve as their underlying types. Recursive schemas are checked once per pair
/// of named types (a pair being checked is taken as compatible when met again inside itself).
/// </summary>
internal static class AvroResolution
{
    public static List<Break> Check(Schema reader, Schema writer)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        var breaks = new List<Break>();
        new Walk(breaks).Resolve(reader, writer, RootPath(reader, writer));
        return breaks;
    }

    private static string RootPath(Schema reader, Schema writer) =>
        (Base(reader) as NamedSchema)?.Name ?? (Base(writer) as NamedSchema)?.Name ?? "";

    private static Schema Base(Schema schema) => schema is LogicalSchema logical ? logical.BaseSchema : schema;

    private sealed class Walk(List<Break> breaks)
    {
        private readonly HashSet<(Schema, Schema)> _inProgress = new(PairComparer.Instance);

        public void Resolve(Schema reader, Schema writer, string path)
        {
            reader = Base(reader);
            writer = Base(writer);
            if (writer is UnionSchema writerUnion)
            {
                foreach (var branch in writerUnion.Schemas)
                {
                    if (reader is UnionSchema)
                    {
                        if (Match(reader, Base(branch)) is { } readerBranch) Resolve(readerBranch, branch, path);
                        else breaks.Add(new Break(path, BreakKind.UnionBranch, Describe(reader), Describe(branch)));
                    }
                    else Resolve(reader, branch, path);
                }
                return;
            }
            if (reader is UnionSchema readerUnion)
            {
                if (Match(readerUnion, writer) is { } readerBranch) Resolve(readerBranch, writer, path);
                else breaks.Add(new Break(path, BreakKind.Type, Describe(reader), Describe(writer)));
                return;
            }
            if (!SameKind(reader, writer))
            {
                breaks.Add(new Break(path, BreakKind.Type, Describe(reader), Describe(writer)));
                return;
            }
            switch (reader)
            {
                case RecordSchema r:
                    ResolveRecord(r, (RecordSchema)writer, path);
                    break;
                case EnumSchema r:
                    ResolveEnum(r, (EnumSchema)writer, path);
                    break;
                case FixedSchema r:
                    var w = (FixedSchema)writer;
                    if (!NamesMatch(r, w)) breaks.Add(new Break(path, BreakKind.Name, r.Fullname, w.Fullname));
                    else if (r.Size != w.Size) breaks.Add(new Break(path, BreakKind.FixedSize, r.Size.ToString(System.Globalization.CultureInfo.InvariantCulture), w.Size.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    break;
                case ArraySchema r:
                    Resolve(r.ItemSchema, ((ArraySchema)writer).ItemSchema, path + "[]");
                    break;
                case MapSchema r:
                    Resolve(r.ValueSchema, ((MapSchema)writer).ValueSchema, path + "{}");
                    break;
            }
        }

        private void ResolveRecord(RecordSchema reader, RecordSchema writer, string path)
        {
            if (!NamesMatch(reader, writer))
            {
                breaks.Add(new Break(path, BreakKind.Name, reader.Fullname, writer.Fullname));
                return;
            }
            if (!_inProgress.Add((reader, writer))) return; // met again inside itself: checked where it began
            try
            {
                foreach (var field in reader.Fields)
                {
                    var fieldPath = path.Length == 0 ? field.Name : path + "." + field.Name;
                    var written = WriterField(writer, field);
                    if (written is null)
                    {
                        if (field.DefaultValue is null) breaks.Add(new Break(fieldPath, BreakKind.FieldWithoutDefault, Describe(field.Schema), ""));
                        continue;
                    }
                    Resolve(field.Schema, written.Schema, fieldPath);
                }
            }
            finally
            {
                _inProgress.Remove((reader, writer));
            }
        }

        private static Field? WriterField(RecordSchema writer, Field readerField)
        {
            if (writer.TryGetField(readerField.Name, out var byName)) return byName;
            if (readerField.Aliases is { } aliases)
                foreach (var alias in aliases)
                    if (writer.TryGetField(alias, out var byAlias)) return byAlias;
            return null;
        }

        private void ResolveEnum(EnumSchema reader, EnumSchema writer, string path)
        {
            if (!NamesMatch(reader, writer))
            {
                breaks.Add(new Break(path, BreakKind.Name, reader.Fullname, writer.Fullname));
                return;
            }
            if (reader.Default is not null) return; // an unknown symbol reads as the default
            var missing = writer.Symbols.Where(s => !reader.Contains(s)).ToList();
            if (missing.Count > 0) breaks.Add(new Break(path, BreakKind.EnumSymbols, string.Join(", ", reader.Symbols), string.Join(", ", missing)));
        }

        /// <summary>The first branch of a reader's union that reads the writer's (non-union) schema.</summary>
        private static Schema? Match(Schema reader, Schema writer)
        {
            var branches = reader is UnionSchema union ? union.Schemas : [reader];
            bool Reads(Schema branch) => SameKind(Base(branch), writer) && (Base(branch) is not NamedSchema named || NamesMatch(named, (NamedSchema)writer));
            // The specification takes the first branch that matches; an exact type before a promotion.
            return branches.FirstOrDefault(b => Base(b).Tag == writer.Tag && Reads(b)) ?? branches.FirstOrDefault(Reads);
        }

        /// <summary>Types the resolution can pair at all: equal tags, or a primitive promotion.</summary>
        private static bool SameKind(Schema reader, Schema writer)
        {
            if (reader.Tag == writer.Tag) return true;
            return (writer.Tag, reader.Tag) switch
            {
                (Schema.Type.Int, Schema.Type.Long or Schema.Type.Float or Schema.Type.Double) => true,
                (Schema.Type.Long, Schema.Type.Float or Schema.Type.Double) => true,
                (Schema.Type.Float, Schema.Type.Double) => true,
                (Schema.Type.String, Schema.Type.Bytes) => true,
                (Schema.Type.Bytes, Schema.Type.String) => true,
                _ => false,
            };
        }

        private static bool NamesMatch(NamedSchema reader, NamedSchema writer)
        {
            if (reader.Name == writer.Name) return true;
            foreach (var alias in AliasesOf(reader))
                if (alias == writer.Fullname || alias[(alias.LastIndexOf('.') + 1)..] == writer.Name) return true;
            return false;
        }

        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<NamedSchema, string[]> Aliases = new();

        /// <summary>A named type's aliases, full names (Apache.Avro keeps them to itself: they are
        /// read back from the schema's JSON).</summary>
        private static string[] AliasesOf(NamedSchema schema) => Aliases.GetValue(schema, static s =>
        {
            using var json = System.Text.Json.JsonDocument.Parse(s.ToString());
            if (json.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object || !json.RootElement.TryGetProperty("aliases", out var aliases) || aliases.ValueKind != System.Text.Json.JsonValueKind.Array)
                return [];
            return aliases.EnumerateArray()
                .Where(a => a.ValueKind == System.Text.Json.JsonValueKind.String)
                .Select(a => a.GetString()!)
                .Select(a => a.Contains('.', StringComparison.Ordinal) || string.IsNullOrEmpty(s.Namespace) ? a : s.Namespace + "." + a)
                .ToArray();
        });
    }

    /// <summary>A schema in a few words: its type, and its name for named types.</summary>
    internal static string Describe(Schema schema) => Base(schema) switch
    {
        UnionSchema u => "union [" + string.Join(", ", u.Schemas.Select(Describe)) + "]",
        RecordSchema r => "record " + r.Name,
        EnumSchema e => "enum " + e.Name,
        FixedSchema f => $"fixed {f.Name} ({f.Size} bytes)",
        ArraySchema a => "array of " + Describe(a.ItemSchema),
        MapSchema m => "map of " + Describe(m.ValueSchema),
        var s => s.Tag.ToString().ToLowerInvariant(),
    };

    private sealed class PairComparer : IEqualityComparer<(Schema, Schema)>
    {
        public static readonly PairComparer Instance = new();

        public bool Equals((Schema, Schema) x, (Schema, Schema) y) => ReferenceEquals(x.Item1, y.Item1) && ReferenceEquals(x.Item2, y.Item2);

        public int GetHashCode((Schema, Schema) obj) =>
            HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item1), System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item2));
    }
}
