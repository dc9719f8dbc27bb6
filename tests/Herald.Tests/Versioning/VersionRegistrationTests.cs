using Herald.Outbox;
using Herald.Sqlite;
using Herald.Tests.Failures;
using Herald.Tests.Kit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Herald.Tests.Versioning;

/// <summary>Chains are checked when the host starts; publishers and the outbox write the current version.</summary>
public class VersionRegistrationTests
{
    private static async Task<Exception> StartFailureAsync(Action<HeraldBuilder> configure)
    {
        using var dir = new TempDirectory("versions");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddHerald(h =>
        {
            h.UseEmbedded(dir.Path, Hosts.Fast);
            configure(h);
        });
        var host = builder.Build(); // configuring must not throw: the start does
        try
        {
            var error = await Record.ExceptionAsync(() => host.StartAsync());
            Assert.NotNull(error); // null: the host started despite the bad chain
            return error is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : error;
        }
        finally
        {
            await host.DisposeHostAsync();
        }
    }

    private static ParcelMeasuredV2 To2(ParcelMeasuredV1 v1) => new(v1.Parcel, v1.Seq, v1.Grams / 1000m, v1.Size);

    private static ParcelMeasured To3(ParcelMeasuredV2 v2) => new(v2.Parcel, v2.Seq, v2.Kilograms, 1, 1, 1);

    private static ParcelMeasured Skip(ParcelMeasuredV1 v1) => new(v1.Parcel, v1.Seq, v1.Grams / 1000m, 1, 1, 1);

    [Theory]
    [InlineData("gap", "no upcaster from version 2, so version 1 cannot reach the current version 3")]
    [InlineData("duplicate", "two upcasters from version 1")]
    [InlineData("wrong-next-type", "the upcaster from version 1 returns ParcelMeasured, but version 2 is ParcelMeasuredV2 (what its upcaster takes)")]
    [InlineData("wrong-current-type", "the upcaster from version 1 returns ParcelMeasuredV2, but version 2 is ParcelMeasured (the current type)")]
    [InlineData("version-zero", "Version(0) is not a version")]
    [InlineData("version-negative", "Version(-2) is not a version")]
    [InlineData("from-zero", "an upcaster from version 0")]
    [InlineData("from-current", "an upcaster from version 3 needs a current version above it, and the current version is 3")]
    [InlineData("no-version", "an upcaster from version 1 needs a current version above it, and the current version is 1; set .Version(2)")]
    public async Task A_bad_upcaster_chain_fails_the_start_naming_the_event_type_and_the_version(string chain, string message)
    {
        var error = await StartFailureAsync(h =>
        {
            var e = h.Event<ParcelMeasured>(Parcels.Topic, p => p.Parcel);
            _ = chain switch
            {
                "gap" => e.Version(3).Upcast<ParcelMeasuredV1, ParcelMeasuredV2>(1, To2),
                "duplicate" => e.Version(2).Upcast<ParcelMeasuredV1, ParcelMeasured>(1, Skip).Upcast<ParcelMeasuredV1, ParcelMeasured>(1, Skip),
                "wrong-next-type" => e.Version(3).Upcast<ParcelMeasuredV1, ParcelMeasured>(1, Skip).Upcast<ParcelMeasuredV2, ParcelMeasured>(2, To3),
                "wrong-current-type" => e.Version(2).Upcast<ParcelMeasuredV1, ParcelMeasuredV2>(1, To2),
                "version-zero" => e.Version(0),
                "version-negative" => e.Version(-2),
                "from-zero" => e.Version(2).Upcast<ParcelMeasuredV1, ParcelMeasured>(0, Skip).Upcast<ParcelMeasuredV1, ParcelMeasured>(1, Skip),
                "from-current" => e.Version(3).Upcast<ParcelMeasuredV1, ParcelMeasuredV2>(1, To2).Upcast<ParcelMeasuredV2, ParcelMeasured>(2, To3).Upcast<ParcelMeasured, ParcelMeasured>(3, p => p),
                "no-version" => e.Upcast<ParcelMeasuredV1, ParcelMeasured>(1, Skip),
                _ => throw new ArgumentOutOfRangeException(nameof(chain), chain, null),
            };
            h.Subscribe(Parcels.Group, s => s.Handle<ParcelMeasured>((_, _, _) => ValueTask.CompletedTask));
        });
        var argument = Assert.IsAssignableFrom<ArgumentException>(error);
        Assert.StartsWith("event type ParcelMeasured ('ParcelMeasured'): ", argument.Message, StringComparison.Ordinal);
        Assert.Contains(message, argument.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_complete_chain_starts_and_Version_without_upcasters_is_valid()
    {
        using var dir = new TempDirectory("versions");
        await using var host = await FailureHost.StartAsync(dir.Path, h =>
        {
            Parcels.MapParcelMeasured(h);
            h.Event<LabelPrinted>(Parcels.Topic, e => e.Parcel).Version(5); // versions 1 to 4 retired
            h.Subscribe(Parcels.Group, s => s.Handle<ParcelMeasured>((_, _, _) => ValueTask.CompletedTask));
        });
        Assert.NotNull(host.Publisher);
    }

    [Fact]
    public async Task The_publisher_and_the_outbox_write_the_current_version_next_to_the_type()
    {
        using var dir = new TempDirectory("versions");
        var database = $"Data Source={Path.Combine(dir.Path, "service.db")}";
        await using (var host = await FailureHost.StartAsync(Path.Combine(dir.Path, "log"), h =>
        {
            h.UseSqlite(database);
            h.Topic(Parcels.Topic, 1);
            Parcels.MapParcelMeasured(h);
            h.Event<LabelPrinted>(Parcels.Topic, e => e.Parcel);
        }))
        {
            await host.Publisher.PublishAsync(Parcels.Expected("direct", 0));
            await host.Publisher.PublishAsync(new LabelPrinted("direct", 1));
            var outbox = host.Host.Services.GetRequiredService<TransactionalOutbox>();
            await using (var tx = await outbox.BeginAsync())
            {
                await tx.PublishAsync(Parcels.Expected("outboxed", 2));
                await tx.PublishManyAsync([new LabelPrinted("outboxed", 3)]);
                await tx.CommitAsync();
            }
            await using (var connection = await outbox.Store.OpenConnectionAsync())
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                await outbox.PublishAsync(transaction, Parcels.Expected("outboxed", 4));
                await transaction.CommitAsync();
                outbox.NotifyCommitted();
            }
            await Eventually.WaitAsync(async () => (await host.ReadAsync(Parcels.Topic)).Count == 5, what: () => "the outbox relayed");

            var records = await host.ReadAsync(Parcels.Topic);
            var versions = records.Select(r => (Type: RetryTests.Header(r.Headers, HeaderNames.Type), Version: RetryTests.Header(r.Headers, HeaderNames.DataVersion))).ToList();
            Assert.Equal(
                [("ParcelMeasured", "3"), ("LabelPrinted", "1"), ("ParcelMeasured", "3"), ("LabelPrinted", "1"), ("ParcelMeasured", "3")],
                versions.Select(v => (v.Type!, v.Version!)));
            // ce_type then ce_dataversion first: the two headers every consumer looks up per record.
            foreach (var r in records) Assert.Equal([HeaderNames.Type, HeaderNames.DataVersion], r.Headers.Take(2).Select(h => h.Key));
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}
