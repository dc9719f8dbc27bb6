using System.Text.Json;
using System.Text.Json.Nodes;
using Herald.Schemas.Compatibility;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Herald.Schemas.Registry;

/// <summary>
/// Confluent Schema Registry's REST API over <see cref="EmbeddedSchemaRegistry"/>, so that
/// Confluent's clients and serializers, and tools built on them, use Herald's registry:
/// <c>/subjects</c> (list, versions, register, look up, get a version or its raw schema, delete,
/// <c>referencedby</c>), schema references,
/// <c>/schemas/ids/{id}</c>, <c>/schemas/types</c>, <c>/compatibility/subjects/{s}/versions[/{v}]</c>,
/// <c>/config[/{s}]</c> and <c>/mode</c>. Errors are Confluent's bodies
/// (<c>{"error_code":40401,"message":"..."}</c>) with their HTTP statuses; request bodies are
/// limited to 16 MiB.
/// </summary>
public static class SchemaRegistryApi
{
    private const string ContentType = "application/vnd.schemaregistry.v1+json";
    private const long MaxBodyBytes = 16 * 1024 * 1024;

    public static IEndpointRouteBuilder MapSchemaRegistry(this IEndpointRouteBuilder routes, EmbeddedSchemaRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(routes);
        ArgumentNullException.ThrowIfNull(registry);
        routes.MapGet("/", () => Json(new JsonObject()));
        routes.MapGet("/schemas/types", () => Json(new JsonArray(EmbeddedSchemaRegistry.Json, EmbeddedSchemaRegistry.Avro)));
        routes.MapGet("/schemas/ids/{id:int}", (int id) => Call(async () =>
        {
            var stored = await registry.GetByIdAsync(id).ConfigureAwait(false);
            return Json(WithTypeAndReferences(new JsonObject { ["schema"] = stored.Schema }, stored.SchemaType, stored.References));
        }));
        routes.MapGet("/schemas/ids/{id:int}/schema", (int id) => Call(async () => Raw((await registry.GetByIdAsync(id).ConfigureAwait(false)).Schema)));
        routes.MapGet("/subjects", (bool? deleted) => Call(async () =>
            Json(new JsonArray((await registry.ListSubjectsAsync(deleted ?? false).ConfigureAwait(false)).Select(s => (JsonNode)s).ToArray()))));
        routes.MapGet("/subjects/{subject}/versions", (string subject, bool? deleted) => Call(async () =>
            Json(new JsonArray((await registry.ListVersionsAsync(subject, deleted ?? false).ConfigureAwait(false)).Select(v => (JsonNode)v).ToArray()))));
        routes.MapGet("/subjects/{subject}/versions/{version}", (string subject, string version, bool? deleted) => Call(async () =>
            Json(Registered(await registry.GetVersionAsync(subject, Version(version), deleted ?? false).ConfigureAwait(false)))));
        routes.MapGet("/subjects/{subject}/versions/{version}/schema", (string subject, string version) => Call(async () =>
            Raw((await registry.GetVersionAsync(subject, Version(version)).ConfigureAwait(false)).Schema)));
        routes.MapGet("/subjects/{subject}/versions/{version}/referencedby", (string subject, string version) => Call(async () =>
            Json(new JsonArray((await registry.ReferencedByAsync(subject, Version(version)).ConfigureAwait(false)).Select(v => (JsonNode)v).ToArray()))));
        routes.MapPost("/subjects/{subject}/versions", (string subject, HttpRequest request) => Call(async () =>
        {
            var (schema, type, references) = await SchemaBody(request).ConfigureAwait(false);
            var id = await registry.RegisterAsync(subject, schema, type, references).ConfigureAwait(false);
            return Json(new JsonObject { ["id"] = id });
        }));
        routes.MapPost("/subjects/{subject}", (string subject, bool? deleted, HttpRequest request) => Call(async () =>
        {
            var (schema, type, references) = await SchemaBody(request).ConfigureAwait(false);
            return Json(Registered(await registry.LookUpAsync(subject, schema, type, references, deleted ?? false).ConfigureAwait(false)));
        }));
        routes.MapDelete("/subjects/{subject}", (string subject, bool? permanent) => Call(async () =>
            Json(new JsonArray((await registry.DeleteSubjectAsync(subject, permanent ?? false).ConfigureAwait(false)).Select(v => (JsonNode)v).ToArray()))));
        routes.MapDelete("/subjects/{subject}/versions/{version}", (string subject, string version, bool? permanent) => Call(async () =>
            Json(JsonValue.Create(await registry.DeleteVersionAsync(subject, Version(version), permanent ?? false).ConfigureAwait(false)))));
        routes.MapPost("/compatibility/subjects/{subject}/versions/{version}", (string subject, string version, bool? verbose, HttpRequest request) => Call(async () =>
        {
            var (schema, type, references) = await SchemaBody(request).ConfigureAwait(false);
            return Json(Compatibility(await registry.TestCompatibilityAsync(subject, schema, Version(version), type, references).ConfigureAwait(false), verbose ?? false));
        }));
        routes.MapPost("/compatibility/subjects/{subject}/versions", (string subject, bool? verbose, HttpRequest request) => Call(async () =>
        {
            var (schema, type, references) = await SchemaBody(request).ConfigureAwait(false);
            return Json(Compatibility(await registry.TestCompatibilityAsync(subject, schema, null, type, references).ConfigureAwait(false), verbose ?? false));
        }));
        routes.MapGet("/config", () => Call(async () => Json(new JsonObject { ["compatibilityLevel"] = (await registry.GetLevelAsync().ConfigureAwait(false)).ToConfluentName() })));
        routes.MapPut("/config", (HttpRequest request) => Call(async () =>
        {
            var level = await LevelBody(request).ConfigureAwait(false);
            await registry.SetLevelAsync(null, level).ConfigureAwait(false);
            return Json(new JsonObject { ["compatibility"] = level.ToConfluentName() });
        }));
        routes.MapGet("/config/{subject}", (string subject, bool? defaultToGlobal) => Call(async () =>
            Json(new JsonObject { ["compatibilityLevel"] = (await registry.GetLevelAsync(subject, defaultToGlobal ?? false).ConfigureAwait(false)).ToConfluentName() })));
        routes.MapPut("/config/{subject}", (string subject, HttpRequest request) => Call(async () =>
        {
            var level = await LevelBody(request).ConfigureAwait(false);
            await registry.SetLevelAsync(subject, level).ConfigureAwait(false);
            return Json(new JsonObject { ["compatibility"] = level.ToConfluentName() });
        }));
        routes.MapDelete("/config/{subject}", (string subject) => Call(async () =>
            Json(new JsonObject { ["compatibilityLevel"] = (await registry.DeleteLevelAsync(subject).ConfigureAwait(false)).ToConfluentName() })));
        routes.MapGet("/mode", () => Json(new JsonObject { ["mode"] = "READWRITE" }));
        routes.MapGet("/mode/{subject}", (string subject) => Json(new JsonObject { ["mode"] = "READWRITE" }));
        return routes;
    }

    /// <summary>Runs the API on its own Kestrel server (<c>herald schema-registry</c>, tests);
    /// <paramref name="url"/> such as <c>http://127.0.0.1:8081</c>, port 0 for any free one.</summary>
    public static async Task<WebApplication> StartAsync(EmbeddedSchemaRegistry registry, string url, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxBodyBytes);
        var app = builder.Build();
        app.MapSchemaRegistry(registry);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return app;
    }

    private static int Version(string version)
    {
        if (string.Equals(version, "latest", StringComparison.OrdinalIgnoreCase) || version == "-1") return -1;
        return int.TryParse(version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 1
            ? v
            : throw SchemaRegistryException.InvalidVersion(version);
    }

    private static async Task<(string Schema, string? Type, List<SchemaReference> References)> SchemaBody(HttpRequest request)
    {
        var body = await Body(request).ConfigureAwait(false);
        if (body["schema"] is not JsonValue schema || schema.GetValueKind() != JsonValueKind.String)
            throw new SchemaRegistryException(42201, "Invalid schema: the request body needs \"schema\", a string holding the schema.");
        var references = new List<SchemaReference>();
        switch (body["references"])
        {
            case null:
                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is not JsonObject r || Text(r["name"]) is not { } name || Text(r["subject"]) is not { } subject || r["version"] is not JsonValue v || !v.TryGetValue<int>(out var version))
                        throw new SchemaRegistryException(42201, $"Invalid schema: references[{i}] needs \"name\" and \"subject\" (strings) and \"version\" (an integer).");
                    references.Add(new SchemaReference(name, subject, version));
                }
                break;
            default:
                throw new SchemaRegistryException(42201, "Invalid schema: \"references\" is not an array.");
        }
        return (schema.GetValue<string>(), Text(body["schemaType"]), references);
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;

    private static async Task<CompatibilityLevel> LevelBody(HttpRequest request)
    {
        var body = await Body(request).ConfigureAwait(false);
        var name = body["compatibility"]?.GetValue<string>() ?? body["compatibilityLevel"]?.GetValue<string>();
        return CompatibilityLevels.TryParse(name, out var level) ? level : throw SchemaRegistryException.InvalidCompatibilityLevel(name ?? "");
    }

    private static async Task<JsonObject> Body(HttpRequest request)
    {
        try
        {
            return await JsonNode.ParseAsync(request.Body).ConfigureAwait(false) as JsonObject
                ?? throw new SchemaRegistryException(42201, "Invalid request: the body is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new SchemaRegistryException(42201, $"Invalid request: the body is not JSON ({e.Message}).");
        }
        catch (InvalidOperationException e) when (e.Message.Contains("too large", StringComparison.OrdinalIgnoreCase))
        {
            throw new SchemaRegistryException(42201, $"Invalid request: the body is over {MaxBodyBytes} bytes.");
        }
    }

    private static JsonObject Registered(RegisteredSchema s) =>
        WithTypeAndReferences(new JsonObject { ["subject"] = s.Subject, ["version"] = s.Version, ["id"] = s.Id, ["schema"] = s.Schema }, s.SchemaType, s.References);

    /// <summary>Confluent leaves schemaType out for Avro, and references when there are none.</summary>
    private static JsonObject WithTypeAndReferences(JsonObject body, string type, IReadOnlyList<SchemaReference> references)
    {
        if (type != EmbeddedSchemaRegistry.Avro) body["schemaType"] = type;
        if (references.Count > 0) body["references"] = References(references);
        return body;
    }

    internal static JsonArray References(IEnumerable<SchemaReference> references) =>
        new(references.Select(r => (JsonNode)new JsonObject { ["name"] = r.Name, ["subject"] = r.Subject, ["version"] = r.Version }).ToArray());

    private static JsonObject Compatibility(CompatibilityResult result, bool verbose)
    {
        var body = new JsonObject { ["is_compatible"] = result.IsCompatible };
        if (verbose) body["messages"] = new JsonArray(result.Differences.Select(d => (JsonNode)d.ToString()).ToArray());
        return body;
    }

    private static async Task<IResult> Call(Func<Task<IResult>> handle)
    {
        try
        {
            return await handle().ConfigureAwait(false);
        }
        catch (SchemaRegistryException e)
        {
            return Results.Text(new JsonObject { ["error_code"] = e.ErrorCode, ["message"] = e.Message }.ToJsonString(), ContentType, statusCode: e.HttpStatus);
        }
    }

    private static IResult Json(JsonNode? body) => Results.Text(body?.ToJsonString() ?? "null", ContentType, statusCode: 200);

    private static IResult Raw(string schema) => Results.Text(schema, "application/json", statusCode: 200);
}
