using Herald.Schemas.Compatibility;
using Herald.Schemas.Internal;
using Microsoft.Data.Sqlite;

namespace Herald.Schemas.Registry;

/// <summary>A failure of a registry call, with Confluent Schema Registry's error code (40401
/// subject not found, 409 incompatible, 42201 invalid schema...) and HTTP status.</summary>
public sealed class SchemaRegistryException(int errorCode, string message) : Exception(message)
{
    public int ErrorCode { get; } = errorCode;

    /// <summary>The HTTP status Confluent's REST API answers with: the code's first three digits.</summary>
    public int HttpStatus => ErrorCode < 1000 ? ErrorCode : ErrorCode / 100;

    internal static SchemaRegistryException SubjectNotFound(string subject) => new(40401, $"Subject '{subject}' not found.");
    internal static SchemaRegistryException VersionNotFound(string subject, int version) => new(40402, $"Version {version} not found for subject '{subject}'.");
    internal static SchemaRegistryException SchemaNotFound(string what) => new(40403, $"Schema {what} not found.");
    internal static SchemaRegistryException SubjectSoftDeleted(string subject) => new(40404, $"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently.");
    internal static SchemaRegistryException SubjectNotSoftDeleted(string subject) => new(40405, $"Subject '{subject}' was not deleted first before being permanently deleted.");
    internal static SchemaRegistryException VersionSoftDeleted(string subject, int version) => new(40406, $"Version {version} of subject '{subject}' was soft deleted. Set permanent=true to delete permanently.");
    internal static SchemaRegistryException VersionNotSoftDeleted(string subject, int version) => new(40407, $"Version {version} of subject '{subject}' was not deleted first before being permanently deleted.");
    internal static SchemaRegistryException SubjectLevelConfigNotFound(string subject) => new(40408, $"Subject '{subject}' does not have subject-level compatibility configured.");
    internal static SchemaRegistryException InvalidSchema(string why) => new(42201, why);
    internal static SchemaRegistryException ReferenceExists(string subject, int version) => new(42206, $"One or more references exist to the schema {{subject={subject},version={version}}}.");
    internal static SchemaRegistryException InvalidVersion(string version) => new(42202, $"The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\".");
    internal static SchemaRegistryException InvalidCompatibilityLevel(string level) => new(42203, $"Invalid compatibility level '{level}'. Valid values are {string.Join(", ", Enum.GetValues<CompatibilityLevel>().Select(l => l.ToConfluentName()))}.");
    internal static SchemaRegistryException Incompatible(IEnumerable<string> differences) => new(409, "Schema being registered is incompatible with an earlier schema for subject: " + string.Join("; ", differences));
}

/// <summary>A schema as the registry holds it.</summary>
public sealed record RegisteredSchema(int Id, string Subject, int Version, string SchemaType, string Schema)
{
    public IReadOnlyList<SchemaReference> References { get; init; } = [];
}

/// <summary>
/// The embedded schema registry: subjects, their versions, global schema ids, soft and hard
/// deletes, and compatibility levels per subject and globally, with Confluent Schema Registry's
/// semantics and error codes. State lives in a SQLite file of its own (WAL, synchronous=FULL): a
/// registration returns once it is durable.
/// <list type="bullet">
/// <item>A schema's id is global: the same schema (by its parsed, normalized form) registered in
/// two subjects has one id; registered again in a subject it returns the version it has.</item>
/// <item>A registration is checked against the subject's versions that are not deleted, at the
/// subject's level (else the global one, BACKWARD by default), and refused with each breaking
/// path when incompatible; nothing is written then.</item>
/// <item>A soft-deleted version keeps its id (readers of old records still resolve it); a hard
/// delete (permanent, after a soft one) removes the version.</item>
/// </list>
/// Schema types: AVRO (the default) and JSON (JSON Schema); a subject's versions are of one type.
/// </summary>
public sealed class EmbeddedSchemaRegistry : ISchemaRegistry, IDisposable
{
    public const string Avro = "AVRO";
    public const string Json = "JSON";
    private readonly SqliteConnection _db;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private EmbeddedSchemaRegistry(SqliteConnection db) => _db = db;

    /// <summary>Opens (creating) the registry's database at <paramref name="path"/>.</summary>
    public static EmbeddedSchemaRegistry Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        Execute(db, """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS registry_schema (id INTEGER PRIMARY KEY, type TEXT NOT NULL, normalized TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (type, normalized));
            CREATE TABLE IF NOT EXISTS registry_version (subject TEXT NOT NULL, version INTEGER NOT NULL, schema_id INTEGER NOT NULL REFERENCES registry_schema(id), deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (subject, version));
            CREATE TABLE IF NOT EXISTS registry_config (subject TEXT PRIMARY KEY, level TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS registry_reference (schema_id INTEGER NOT NULL REFERENCES registry_schema(id), position INTEGER NOT NULL, name TEXT NOT NULL, subject TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (schema_id, position));
            CREATE INDEX IF NOT EXISTS registry_reference_target ON registry_reference (subject, version);
            """);
        return new EmbeddedSchemaRegistry(db);
    }

    /// <summary>The level when neither the subject nor the registry has one set.</summary>
    public const CompatibilityLevel DefaultLevel = CompatibilityLevel.Backward;

    /// <summary>Registers a schema under a subject; returns its global id (the existing one when
    /// the subject has it already). A reference to version -1 is to the latest, and is kept as the
    /// version that was the latest then.</summary>
    public async Task<int> RegisterAsync(string subject, string schema, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, CancellationToken cancellationToken = default)
    {
        ValidateSubject(subject);
        return await Locked(() =>
        {
            var refs = Pinned(references);
            var (type, normalized, whole) = Parse(schema, schemaType, refs);
            var existing = Scalar<long?>("SELECT v.schema_id FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND v.deleted = 0 AND s.type = $type AND s.normalized = $normalized",
                ("$subject", subject), ("$type", type), ("$normalized", normalized));
            if (existing is { } found) return (int)found;
            var level = LevelOf(subject);
            var older = Query("SELECT s.id FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND v.deleted = 0 ORDER BY v.version",
                r => (int)r.GetInt64(0), ("$subject", subject)).ConvertAll(Whole);
            var result = Check(type, whole, older, level);
            if (!result.IsCompatible) throw SchemaRegistryException.Incompatible(result.Differences.Select(d => d.ToString()));
            using var tx = _db.BeginTransaction();
            var id = Scalar<long?>("SELECT id FROM registry_schema WHERE type = $type AND normalized = $normalized", ("$type", type), ("$normalized", normalized));
            if (id is null)
            {
                id = Scalar<long>("INSERT INTO registry_schema (type, normalized, text) VALUES ($type, $normalized, $text) RETURNING id", ("$type", type), ("$normalized", normalized), ("$text", schema));
                for (var i = 0; i < refs.Count; i++)
                    Execute(_db, "INSERT INTO registry_reference (schema_id, position, name, subject, version) VALUES ($id, $position, $name, $subject, $version)",
                        ("$id", id), ("$position", i), ("$name", refs[i].Name), ("$subject", refs[i].Subject), ("$version", refs[i].Version));
            }
            var version = Scalar<long>("SELECT coalesce(max(version), 0) + 1 FROM registry_version WHERE subject = $subject", ("$subject", subject));
            Execute(_db, "INSERT INTO registry_version (subject, version, schema_id) VALUES ($subject, $version, $id)", ("$subject", subject), ("$version", version), ("$id", id));
            tx.Commit();
            return (int)id.Value;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The subject's version holding this schema (not deleted), or 40403.</summary>
    public async Task<RegisteredSchema> LookUpAsync(string subject, string schema, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, bool includeDeleted = false, CancellationToken cancellationToken = default) =>
        await Locked(() =>
        {
            RequireSubject(subject, includeDeleted);
            var (type, normalized, _) = Parse(schema, schemaType, Pinned(references));
            var found = Query("SELECT v.version, s.id FROM registry_version v JOIN registry_schema s ON s.id = v.schema_id WHERE v.subject = $subject AND s.type = $type AND s.normalized = $normalized AND ($deleted OR v.deleted = 0) ORDER BY v.version LIMIT 1",
                r => ((int)r.GetInt64(0), (int)r.GetInt64(1)), ("$subject", subject), ("$type", type), ("$normalized", normalized), ("$deleted", includeDeleted));
            return found.Count == 1 ? Registered(found[0].Item2, subject, found[0].Item1) : throw SchemaRegistryException.SchemaNotFound("for subject '" + subject + "'");
        }, cancellationToken).ConfigureAwait(false);

    /// <summary>The schema with a global id, soft-deleted versions included (old records name it).</summary>
    public Task<StoredSchema> GetByIdAsync(int id, CancellationToken cancellationToken = default) => Locked(() => Stored(id), cancellationToken);

    /// <summary>The ids of the schemas whose references name a subject's version, as
    /// Confluent's <c>referencedby</c>.</summary>
    public Task<IReadOnlyList<int>> ReferencedByAsync(string subject, int version, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<int>>(() =>
    {
        var which = Query("SELECT version FROM registry_version WHERE subject = $subject AND ($version = -1 OR version = $version) ORDER BY version DESC LIMIT 1",
            r => (int)r.GetInt64(0), ("$subject", subject), ("$version", version));
        RequireSubject(subject, includeDeleted: true);
        if (which.Count == 0) throw SchemaRegistryException.VersionNotFound(subject, version);
        return ReferrersOf(subject, which[0]);
    }, cancellationToken);

    /// <summary>A version of a subject; <paramref name="version"/> -1 for the latest.</summary>
    public Task<RegisteredSchema> GetVersionAsync(string subject, int version, bool includeDeleted = false, CancellationToken cancellationToken = default) => Locked(() =>
    {
        RequireSubject(subject, includeDeleted);
        var found = Query("SELECT v.version, v.schema_id FROM registry_version v WHERE v.subject = $subject AND ($deleted OR v.deleted = 0) AND ($version = -1 OR v.version = $version) ORDER BY v.version DESC LIMIT 1",
            r => ((int)r.GetInt64(0), (int)r.GetInt64(1)), ("$subject", subject), ("$deleted", includeDeleted), ("$version", version));
        return found.Count == 1 ? Registered(found[0].Item2, subject, found[0].Item1) : throw SchemaRegistryException.VersionNotFound(subject, version);
    }, cancellationToken);

    public Task<IReadOnlyList<string>> ListSubjectsAsync(bool includeDeleted = false, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<string>>(() =>
        Query("SELECT DISTINCT subject FROM registry_version WHERE $deleted OR deleted = 0 ORDER BY subject", r => r.GetString(0), ("$deleted", includeDeleted)), cancellationToken);

    public Task<IReadOnlyList<int>> ListVersionsAsync(string subject, bool includeDeleted = false, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<int>>(() =>
    {
        RequireSubject(subject, includeDeleted);
        return Query("SELECT version FROM registry_version WHERE subject = $subject AND ($deleted OR deleted = 0) ORDER BY version", r => (int)r.GetInt64(0), ("$subject", subject), ("$deleted", includeDeleted));
    }, cancellationToken);

    /// <summary>Deletes one version: soft (its id stays readable), or permanently after a soft delete.</summary>
    public Task<int> DeleteVersionAsync(string subject, int version, bool permanent = false, CancellationToken cancellationToken = default) => Locked(() =>
    {
        RequireSubject(subject, includeDeleted: true);
        var found = Query("SELECT version, deleted FROM registry_version WHERE subject = $subject AND ($version = -1 OR version = $version) ORDER BY version DESC LIMIT 1",
            r => ((int)r.GetInt64(0), r.GetInt64(1) != 0), ("$subject", subject), ("$version", version));
        if (found.Count == 0) throw SchemaRegistryException.VersionNotFound(subject, version);
        var (which, deleted) = found[0];
        if (ReferrersOf(subject, which).Count > 0) throw SchemaRegistryException.ReferenceExists(subject, which);
        if (permanent)
        {
            if (!deleted) throw SchemaRegistryException.VersionNotSoftDeleted(subject, which);
            Execute(_db, "DELETE FROM registry_version WHERE subject = $subject AND version = $version", ("$subject", subject), ("$version", which));
        }
        else
        {
            if (deleted) throw SchemaRegistryException.VersionSoftDeleted(subject, which);
            Execute(_db, "UPDATE registry_version SET deleted = 1 WHERE subject = $subject AND version = $version", ("$subject", subject), ("$version", which));
        }
        return which;
    }, cancellationToken);

    /// <summary>Deletes a subject's versions: soft, or permanently after a soft delete; returns them.</summary>
    public Task<IReadOnlyList<int>> DeleteSubjectAsync(string subject, bool permanent = false, CancellationToken cancellationToken = default) => Locked<IReadOnlyList<int>>(() =>
    {
        var versions = Query("SELECT version, deleted FROM registry_version WHERE subject = $subject ORDER BY version", r => ((int)r.GetInt64(0), r.GetInt64(1) != 0), ("$subject", subject));
        if (versions.Count == 0) throw SchemaRegistryException.SubjectNotFound(subject);
        foreach (var (v, _) in versions)
            if (ReferrersOf(subject, v).Count > 0) throw SchemaRegistryException.ReferenceExists(subject, v);
        if (permanent)
        {
            if (versions.Any(v => !v.Item2)) throw SchemaRegistryException.SubjectNotSoftDeleted(subject);
            Execute(_db, "DELETE FROM registry_version WHERE subject = $subject", ("$subject", subject));
            Execute(_db, "DELETE FROM registry_config WHERE subject = $subject", ("$subject", subject));
            return versions.ConvertAll(v => v.Item1);
        }
        if (versions.All(v => v.Item2)) throw SchemaRegistryException.SubjectSoftDeleted(subject);
        Execute(_db, "UPDATE registry_version SET deleted = 1 WHERE subject = $subject", ("$subject", subject));
        return versions.Where(v => !v.Item2).Select(v => v.Item1).ToList();
    }, cancellationToken);

    /// <summary>The level of a subject (its own, else the global one), or the global level when
    /// <paramref name="subject"/> is null.</summary>
    public Task<CompatibilityLevel> GetLevelAsync(string? subject = null, bool fallBack = true, CancellationToken cancellationToken = default) => Locked(() =>
    {
        if (subject is null) return GlobalLevel();
        return OwnLevel(subject) ?? (fallBack ? GlobalLevel() : throw SchemaRegistryException.SubjectLevelConfigNotFound(subject));
    }, cancellationToken);

    /// <summary>Sets a subject's level, or the global one when <paramref name="subject"/> is null.</summary>
    public Task SetLevelAsync(string? subject, CompatibilityLevel level, CancellationToken cancellationToken = default) => Locked(() =>
    {
        Execute(_db, "INSERT INTO registry_config (subject, level) VALUES ($subject, $level) ON CONFLICT (subject) DO UPDATE SET level = excluded.level",
            ("$subject", subject ?? ""), ("$level", level.ToConfluentName()));
        return true;
    }, cancellationToken);

    /// <summary>Removes a subject's own level (it falls back to the global one); returns what it was.</summary>
    public Task<CompatibilityLevel> DeleteLevelAsync(string subject, CancellationToken cancellationToken = default) => Locked(() =>
    {
        var own = Scalar<string?>("DELETE FROM registry_config WHERE subject = $subject RETURNING level", ("$subject", subject));
        return own is not null && CompatibilityLevels.TryParse(own, out var level) ? level : throw SchemaRegistryException.SubjectLevelConfigNotFound(subject);
    }, cancellationToken);

    /// <summary>Whether a schema could be registered: against one version (-1 the latest) or,
    /// with <paramref name="version"/> null, against what the subject's level checks.</summary>
    public Task<CompatibilityResult> TestCompatibilityAsync(string subject, string schema, int? version = null, string? schemaType = null, IReadOnlyList<SchemaReference>? references = null, CancellationToken cancellationToken = default) => Locked(() =>
    {
        var (type, _, whole) = Parse(schema, schemaType, Pinned(references));
        var level = LevelOf(subject);
        var older = Query("SELECT v.version, v.schema_id FROM registry_version v WHERE v.subject = $subject AND v.deleted = 0 ORDER BY v.version",
            r => ((int)r.GetInt64(0), (int)r.GetInt64(1)), ("$subject", subject));
        if (version is { } one)
        {
            var chosen = one == -1 ? older.LastOrDefault() : older.FirstOrDefault(o => o.Item1 == one);
            if (chosen.Item1 == 0) throw older.Count == 0 ? SchemaRegistryException.SubjectNotFound(subject) : SchemaRegistryException.VersionNotFound(subject, one);
            older = [chosen];
            level = level.WithoutTransitivity();
        }
        return Check(type, whole, older.ConvertAll(o => Whole(o.Item2)), level);
    }, cancellationToken);

    private CompatibilityLevel LevelOf(string subject) => OwnLevel(subject) ?? GlobalLevel();

    private CompatibilityLevel GlobalLevel() => OwnLevel("") ?? DefaultLevel; // the global level is kept as subject ''

    private CompatibilityLevel? OwnLevel(string subject)
    {
        var own = Scalar<string?>("SELECT level FROM registry_config WHERE subject = $subject", ("$subject", subject));
        return own is not null && CompatibilityLevels.TryParse(own, out var level) ? level : null;
    }

    private void RequireSubject(string subject, bool includeDeleted)
    {
        var (all, live) = Query("SELECT count(*), coalesce(sum(deleted = 0), 0) FROM registry_version WHERE subject = $subject", r => (r.GetInt64(0), r.GetInt64(1)), ("$subject", subject))[0];
        if (all == 0 || (live == 0 && !includeDeleted)) throw SchemaRegistryException.SubjectNotFound(subject);
    }

    private static void ValidateSubject(string subject)
    {
        if (string.IsNullOrWhiteSpace(subject) || subject.Length > 255 || subject.Any(char.IsControl))
            throw new SchemaRegistryException(42208, $"Subject '{subject}' is not a valid subject name (1 to 255 characters, none of them control characters).");
    }

    /// <summary>The schema's type, its identity (its normalized form, and its references), and
    /// the whole schema its compatibility is checked on: Apache.Avro's parse with the references'
    /// types defined, or the JSON Schema bundled with its references.</summary>
    private (string Type, string Normalized, object Whole) Parse(string schema, string? schemaType, List<SchemaReference> references)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var type = string.IsNullOrEmpty(schemaType) ? Avro : schemaType.ToUpperInvariant();
        var identity = references.Count == 0 ? "" : "\n" + string.Join("\n", references.Select(r => $"{r.Name}={r.Subject}:{r.Version}"));
        try
        {
            switch (type)
            {
                case Avro:
                    var parsed = SchemaReferences.ParseAvro(schema, references, Stored);
                    return (type, parsed.ToString() + identity, parsed);
                case Json:
                    var bundled = SchemaReferences.BundleJson(schema, references, Stored);
                    _ = SchemaCompatibility.ParseJson(bundled);
                    // Its identity is its compact form: the same schema with other whitespace is the same schema.
                    return (type, System.Text.Json.Nodes.JsonNode.Parse(schema)!.ToJsonString() + identity, bundled);
                default:
                    throw SchemaRegistryException.InvalidSchema($"Schema type '{schemaType}' is not handled by this registry ({Avro} and {Json} are).");
            }
        }
        catch (InvalidSchemaException e)
        {
            throw SchemaRegistryException.InvalidSchema("Invalid schema: " + e.Message);
        }
    }

    /// <summary>References checked, and those to the latest version (-1) pinned to it.</summary>
    private List<SchemaReference> Pinned(IReadOnlyList<SchemaReference>? references)
    {
        if (references is null || references.Count == 0) return [];
        try
        {
            SchemaReferences.Validate(references);
        }
        catch (InvalidSchemaException e)
        {
            throw SchemaRegistryException.InvalidSchema("Invalid schema: " + e.Message);
        }
        return references.Select(r => r.Version != -1 ? r : r with
        {
            Version = Scalar<long?>("SELECT max(version) FROM registry_version WHERE subject = $subject AND deleted = 0", ("$subject", r.Subject)) is { } latest
                ? (int)latest
                : throw SchemaRegistryException.InvalidSchema($"Invalid schema: reference '{r.Name}': subject '{r.Subject}' has no versions"),
        }).ToList();
    }

    /// <summary>A stored schema with its references, by id.</summary>
    private StoredSchema Stored(int id)
    {
        var found = Query("SELECT type, text FROM registry_schema WHERE id = $id", r => (r.GetString(0), r.GetString(1)), ("$id", id));
        if (found.Count == 0) throw SchemaRegistryException.SchemaNotFound("with id " + id);
        return new StoredSchema(found[0].Item1, found[0].Item2, ReferencesOf(id));
    }

    /// <summary>The schema a reference names: its subject's version, soft-deleted or not.</summary>
    private StoredSchema Stored(SchemaReference reference)
    {
        var id = Scalar<long?>("SELECT schema_id FROM registry_version WHERE subject = $subject AND version = $version", ("$subject", reference.Subject), ("$version", reference.Version));
        return id is { } found ? Stored((int)found) : throw SchemaRegistryException.VersionNotFound(reference.Subject, reference.Version);
    }

    private List<SchemaReference> ReferencesOf(int id) =>
        Query("SELECT name, subject, version FROM registry_reference WHERE schema_id = $id ORDER BY position", r => new SchemaReference(r.GetString(0), r.GetString(1), (int)r.GetInt64(2)), ("$id", id));

    /// <summary>The ids of schemas, in versions not permanently deleted, that reference a subject's version.</summary>
    private List<int> ReferrersOf(string subject, int version) =>
        Query("SELECT DISTINCT r.schema_id FROM registry_reference r WHERE r.subject = $subject AND r.version = $version AND EXISTS (SELECT 1 FROM registry_version v WHERE v.schema_id = r.schema_id) ORDER BY r.schema_id",
            r => (int)r.GetInt64(0), ("$subject", subject), ("$version", version));

    private RegisteredSchema Registered(int id, string subject, int version)
    {
        var stored = Stored(id);
        return new RegisteredSchema(id, subject, version, stored.SchemaType, stored.Schema) { References = stored.References };
    }

    /// <summary>A stored schema made whole for a compatibility check, with its type.</summary>
    private (string Type, object Whole) Whole(int id)
    {
        var stored = Stored(id);
        return stored.SchemaType == Avro
            ? (Avro, SchemaReferences.ParseAvro(stored.Schema, stored.References, Stored, $"schema {id}"))
            : (stored.SchemaType, SchemaReferences.BundleJson(stored.Schema, stored.References, Stored));
    }

    /// <summary>A new schema against a subject's versions (oldest first) at a level. A version of
    /// another schema type is a break at every level but NONE, as in Confluent's registry.</summary>
    private static CompatibilityResult Check(string type, object whole, List<(string Type, object Whole)> older, CompatibilityLevel level)
    {
        if (level == CompatibilityLevel.None || older.Count == 0) return new CompatibilityResult(level, []);
        var from = level.IsTransitive() ? 0 : older.Count - 1; // the versions the level checks
        for (var i = older.Count - 1; i >= from; i--)
        {
            if (older[i].Type != type)
                return new CompatibilityResult(level, [new SchemaDifference(i + 1, CompatibilityDirection.Backward, "", $"schema type changed from {older[i].Type} to {type}")]);
        }
        var checkedOnes = older.GetRange(from, older.Count - from);
        var result = type == Avro
            ? SchemaCompatibility.CheckAvro((global::Avro.Schema)whole, checkedOnes.ConvertAll(o => (global::Avro.Schema)o.Whole), level)
            : SchemaCompatibility.CheckJson((string)whole, checkedOnes.ConvertAll(o => (string)o.Whole), level);
        return from == 0 ? result : result with { Differences = result.Differences.Select(d => d with { Version = d.Version + from }).ToList() };
    }

    private async Task<T> Locked<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return work();
        }
        finally
        {
            _gate.Release();
        }
    }

    private static SqliteCommand Command(SqliteConnection db, string sql, (string Name, object? Value)[] parameters)
    {
        var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private static void Execute(SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(db, sql, parameters);
        command.ExecuteNonQuery();
    }

    private T Scalar<T>(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(_db, sql, parameters);
        var result = command.ExecuteScalar();
        return result is null or DBNull ? default! : (T)Convert.ChangeType(result, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(_db, sql, parameters);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read()) rows.Add(read(reader));
        return rows;
    }

    public void Dispose()
    {
        _db.Dispose();
        _gate.Dispose();
    }
}
